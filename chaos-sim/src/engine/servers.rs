//! Server-capacity dependencies: workers, waiting lines, disciplines and abandoned work.

use super::*;

impl<'p> Engine<'p> {
    #[inline(always)]
    pub(super) fn server_config(
        &self,
        replica: usize,
    ) -> (u32, Discipline, Abandoned, Option<&'p ControlledDelay>) {
        match &self.prog.deps[self.prog.replicas[replica].dep].capacity {
            Capacity::Server {
                workers,
                discipline,
                abandoned,
                queue_delay,
            } => (*workers, *discipline, *abandoned, queue_delay.as_ref()),
            _ => (1, Discipline::Fifo, Abandoned::Serve, None),
        }
    }

    /// Inline: an attempt at a server replica goes through here (once per attempt).
    #[inline(always)]
    pub(super) fn server_offer(&mut self, replica: usize, mut item: WorkItem) {
        let (workers, _, abandoned, queue_delay) = self.server_config(replica);
        let r = &mut self.replicas[replica];
        if r.busy < workers {
            // A free worker means an empty line: a wait of 0 tells the controlled delay so.
            if let Some(bound) = queue_delay {
                r.queue_delay.sheds(self.now, 0, bound);
            }
            self.start_service(replica, item, abandoned);
        } else {
            item.enqueued = self.now;
            r.waiting.push_back(item);
            let waiting = r.waiting.len();
            self.m.peak_server_queue = self.m.peak_server_queue.max(waiting as u64);
            self.tl.queue(replica, self.now, waiting);
        }
    }

    /// Starts serving `item`; returns `false` when look-ahead shedding (`drop_late`) sheds
    /// it instead because its service would end at or after its caller's deadline.
    #[inline]
    pub(super) fn start_service(
        &mut self,
        replica: usize,
        item: WorkItem,
        abandoned: Abandoned,
    ) -> bool {
        let dep_index = self.prog.replicas[replica].dep;
        let service = self.prog.deps[dep_index]
            .latency
            .sample_nanos(&mut self.service_rng(dep_index, item.key));
        // Injected latency at a server lengthens its service time: a slowdown.
        let busy_for = service.saturating_add(item.added);
        if abandoned == Abandoned::DropLate && self.now.saturating_add(busy_for) >= item.deadline {
            self.m.shed_late += 1;
            self.answer_shed(&item);
            return false;
        }
        self.replicas[replica].busy += 1;
        self.tl.in_flight(dep_index, self.now, busy_for);
        self.push(
            busy_for,
            Kind::ServerDone,
            item.frame,
            item.generation,
            0,
            item.tag,
            replica as u32,
        );
        true
    }

    /// Shed work's caller learns at once that the server refused it (a throttling error),
    /// if it is still waiting.
    fn answer_shed(&mut self, item: &WorkItem) {
        if !self.work_abandoned(item) {
            self.push(
                0,
                Kind::AttemptDone,
                item.frame,
                item.generation,
                outcome::THROTTLE,
                item.tag,
                0,
            );
        }
    }

    pub(super) fn work_abandoned(&self, item: &WorkItem) -> bool {
        if !self.valid(item.frame, item.generation) {
            return true;
        }
        match self.frames[item.frame as usize].state {
            State::Call(cs) => !cs.is_outstanding(item.tag),
            _ => true,
        }
    }

    pub(super) fn server_next(&mut self, replica: usize) {
        let (_, discipline, abandoned, queue_delay) = self.server_config(replica);
        self.replicas[replica].busy -= 1;
        loop {
            let r = &mut self.replicas[replica];
            let next = shedding::take_next(&mut r.waiting, discipline);
            let waiting = r.waiting.len();
            let Some(item) = next else {
                return;
            };
            self.tl.queue(replica, self.now, waiting);
            if abandoned != Abandoned::Serve
                && (self.now > item.deadline || self.work_abandoned(&item))
            {
                self.m.dropped_work += 1;
                continue;
            }
            let sojourn = self.now.saturating_sub(item.enqueued);
            if let Some(bound) = queue_delay
                && self.replicas[replica]
                    .queue_delay
                    .sheds(self.now, sojourn, bound)
            {
                self.m.shed_queue_delay += 1;
                self.answer_shed(&item);
                continue;
            }
            if self.work_abandoned(&item) {
                self.m.abandoned_work_served += 1;
            }
            if self.start_service(replica, item, abandoned) {
                return;
            }
        }
    }
}
