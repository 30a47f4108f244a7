//! Server-capacity dependencies: workers, waiting lines, disciplines and abandoned work.

use super::*;

impl<'p> Engine<'p> {
    pub(super) fn server_config(&self, replica: usize) -> (u32, Discipline, Abandoned) {
        match self.prog.deps[self.prog.replicas[replica].dep].capacity {
            Capacity::Server {
                workers,
                discipline,
                abandoned,
            } => (workers, discipline, abandoned),
            _ => (1, Discipline::Fifo, Abandoned::Serve),
        }
    }

    pub(super) fn server_offer(&mut self, replica: usize, item: WorkItem) {
        let (workers, _, _) = self.server_config(replica);
        let r = &mut self.replicas[replica];
        if r.busy < workers {
            self.start_service(replica, item);
        } else {
            r.waiting.push_back(item);
            let waiting = r.waiting.len();
            self.m.peak_server_queue = self.m.peak_server_queue.max(waiting as u64);
            self.tl.queue(replica, self.now, waiting);
        }
    }

    pub(super) fn start_service(&mut self, replica: usize, item: WorkItem) {
        let dep_index = self.prog.replicas[replica].dep;
        let service = self.prog.deps[dep_index]
            .latency
            .sample_nanos(&mut self.service_rng(dep_index, item.key));
        self.replicas[replica].busy += 1;
        self.tl
            .in_flight(dep_index, self.now, service.saturating_add(item.added));
        // Injected latency at a server lengthens its service time: a slowdown.
        self.push(
            service.saturating_add(item.added),
            Kind::ServerDone,
            item.frame,
            item.generation,
            0,
            item.tag,
            replica as u32,
        );
    }

    pub(super) fn work_abandoned(&self, item: &WorkItem) -> bool {
        if !self.valid(item.frame, item.generation) {
            return true;
        }
        match self.frames[item.frame as usize].state {
            State::Call(cs) => cs.outstanding & (1 << item.tag) == 0,
            _ => true,
        }
    }

    pub(super) fn server_next(&mut self, replica: usize) {
        let (_, discipline, abandoned) = self.server_config(replica);
        self.replicas[replica].busy -= 1;
        loop {
            let r = &mut self.replicas[replica];
            let next = match discipline {
                Discipline::Fifo => r.waiting.pop_front(),
                Discipline::Lifo => r.waiting.pop_back(),
            };
            let waiting = r.waiting.len();
            let Some(item) = next else {
                return;
            };
            self.tl.queue(replica, self.now, waiting);
            if abandoned == Abandoned::Drop
                && (self.now > item.deadline || self.work_abandoned(&item))
            {
                self.m.dropped_work += 1;
                continue;
            }
            if self.work_abandoned(&item) {
                self.m.abandoned_work_served += 1;
            }
            self.start_service(replica, item);
            return;
        }
    }
}
