//! The event queue and the slab of frames: scheduling, allocation, cancellation, completion.

use super::*;

impl<'p> Engine<'p> {
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn push(
        &mut self,
        delay: u64,
        kind: Kind,
        frame: u32,
        generation: u32,
        outcome: u8,
        tag: u16,
        data: u32,
    ) {
        self.push_or_stop(delay, kind, frame, generation, outcome, tag, data);
    }

    /// `push`, answering whether the event crossed the bound on waiting events (the run
    /// stops): a loop of pushes then needs no test of `stopped` of its own.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn push_or_stop(
        &mut self,
        delay: u64,
        kind: Kind,
        frame: u32,
        generation: u32,
        outcome: u8,
        tag: u16,
        data: u32,
    ) -> bool {
        self.seq += 1;
        self.heap.push(Event {
            key: (u128::from(self.now.saturating_add(delay)) << 64) | u128::from(self.seq),
            frame,
            generation,
            kind,
            outcome,
            tag,
            data,
        });
        let waiting = self.heap.len() as u64;
        // The bound can only be crossed by a new peak.
        if waiting > self.m.peak_event_queue {
            self.m.peak_event_queue = waiting;
            if waiting > MAX_EVENTS_IN_FLIGHT as u64 {
                self.too_many_events();
                return true;
            }
        }
        false
    }

    /// Out of line: the message's formatting stays out of every place `push` is inlined.
    #[cold]
    #[inline(never)]
    fn too_many_events(&mut self) {
        self.stop(format!(
            "more than {MAX_EVENTS_IN_FLIGHT} events waiting at {:.3} simulated seconds: lower \
             the load, a burst or the number of clients",
            self.now as f64 / 1e9
        ));
    }

    /// Out of line, as `too_many_events`.
    #[cold]
    #[inline(never)]
    fn too_many_frames(&mut self) {
        self.stop(format!(
            "more than {MAX_FRAMES_IN_FLIGHT} steps in flight at {:.3} simulated seconds \
             (nested fan-outs, bursts or clients multiply): lower a fan-out count, a burst \
             or the load",
            self.now as f64 / 1e9
        ));
    }

    /// The generator of dependency `dep`'s service time for `key` (the same draws as
    /// `streams.keyed(service_stream, key)`, without hashing the stream's seed again).
    #[inline(always)]
    pub(super) fn service_rng(&self, dep: usize, key: u64) -> KeyedRng {
        KeyedRng::new(self.service_seeds[dep], key)
    }

    #[inline]
    pub(super) fn timer(&mut self, delay: u64, kind: Kind, frame: u32, tag: u16) {
        let generation = self.frames[frame as usize].generation;
        self.push(delay, kind, frame, generation, 0, tag, 0);
    }

    /// A timer with the fixed delay of `lane`: appended to that lane, already in order.
    #[inline(always)]
    pub(super) fn lane_timer(&mut self, lane: usize, kind: Kind, frame: u32, tag: u16) {
        self.seq += 1;
        let event = Event {
            key: (u128::from(self.now.saturating_add(self.prog.lanes[lane])) << 64)
                | u128::from(self.seq),
            frame,
            generation: self.frames[frame as usize].generation,
            kind,
            outcome: 0,
            tag,
            data: 0,
        };
        let was_empty = self.lanes[lane].is_empty();
        self.lanes[lane].push_back(event);
        // A lane's front changes only when it was empty (it is FIFO in time).
        if was_empty {
            self.lane_fronts[lane] = event.key;
            if event.key < self.lane_front.0 {
                self.lane_front = (event.key, lane);
                self.pop_bound = event.key.min(self.horizon_key);
            }
        }
    }

    /// The earliest front of the lanes, after lane `popped` lost its front: a scan of the
    /// fronts' keys, kept side by side so that it reads one small array.
    fn refresh_lane_front(&mut self, popped: usize) {
        self.lane_fronts[popped] = self.lanes[popped].front().map_or(NO_LANE_EVENT, |e| e.key);
        let mut front = (NO_LANE_EVENT, 0);
        for (i, &key) in self.lane_fronts.iter().enumerate() {
            if key < front.0 {
                front = (key, i);
            }
        }
        self.lane_front = front;
        self.pop_bound = front.0.min(self.horizon_key);
    }

    /// The earliest event of the heap and the lanes, if it is not past the horizon.
    ///
    /// Lanes hold only timers of a frame (attempt timeouts, hedges, function timeouts); one
    /// whose frame has finished is cancelled here, dropped without being processed, so it
    /// neither counts as an event nor moves the clock (most function timeouts end this way).
    #[inline]
    pub(super) fn next_event(&mut self) -> Option<Event> {
        loop {
            let from_queue = self.heap.pop_below(self.pop_bound);
            if from_queue.is_some() {
                return from_queue;
            }
            // The queue is empty, or its next event comes after the lanes' or the horizon.
            let (lane_key, lane) = self.lane_front;
            let horizon = self.horizon;
            if lane_key == NO_LANE_EVENT || (lane_key >> 64) as u64 > horizon {
                return None;
            }
            let event = self.lanes[lane].pop_front();
            self.refresh_lane_front(lane);
            match event {
                Some(timer) if !self.valid(timer.frame, timer.generation) => {
                    self.m.cancelled_timers += 1;
                }
                other => return other,
            }
        }
    }

    #[inline(always)]
    pub(super) fn alloc(
        &mut self,
        parent: u32,
        node: u32,
        key: u64,
        deadline: u64,
        state: State,
    ) -> u32 {
        let (parent_generation, next_sibling) = if parent == NONE {
            (0, NONE)
        } else {
            let p = &self.frames[parent as usize];
            (p.generation, p.first_child)
        };
        self.frames_in_use += 1;
        if self.frames_in_use > MAX_FRAMES_IN_FLIGHT {
            self.too_many_frames();
        }
        self.m.peak_frames = self.m.peak_frames.max(self.frames_in_use);
        let frame = Frame {
            generation: 0,
            parent,
            parent_generation,
            first_child: NONE,
            prev_sibling: NONE,
            next_sibling,
            node,
            key,
            start: self.now,
            deadline,
            state,
        };
        let id = match self.free.pop() {
            Some(i) => {
                let generation = self.frames[i as usize].generation;
                self.frames[i as usize] = Frame {
                    generation,
                    ..frame
                };
                i
            }
            None => {
                self.frames.push(frame);
                (self.frames.len() - 1) as u32
            }
        };
        if parent != NONE {
            if next_sibling != NONE {
                self.frames[next_sibling as usize].prev_sibling = id;
            }
            self.frames[parent as usize].first_child = id;
        }
        id
    }

    /// Removes `id` from its parent's list of children.
    #[inline]
    pub(super) fn unlink(&mut self, id: u32) {
        let Frame {
            parent,
            prev_sibling,
            next_sibling,
            ..
        } = self.frames[id as usize];
        if parent == NONE {
            return;
        }
        if prev_sibling == NONE {
            self.frames[parent as usize].first_child = next_sibling;
        } else {
            self.frames[prev_sibling as usize].next_sibling = next_sibling;
        }
        if next_sibling != NONE {
            self.frames[next_sibling as usize].prev_sibling = prev_sibling;
        }
        let f = &mut self.frames[id as usize];
        f.prev_sibling = NONE;
        f.next_sibling = NONE;
    }

    /// Frees `id`. Work still running below it is cancelled: its frames are freed too (their
    /// late events then fail the generation check and are ignored, work queued at a server
    /// counts as abandoned), so no further step, attempt, retry or hedge starts for them.
    /// Invocations and asynchronous events below it are detached instead: a function invoked
    /// by a caller that gave up runs to its own end, as on the platform.
    #[inline(always)]
    pub(super) fn release(&mut self, id: u32) {
        if self.frames[id as usize].first_child != NONE {
            self.release_children(id);
        }
        self.unlink(id);
        let f = &mut self.frames[id as usize];
        f.generation = f.generation.wrapping_add(1);
        f.state = State::Free;
        f.parent = NONE;
        self.frames_in_use -= 1;
        self.free.push(id);
    }

    /// `release`'s first part for a frame with live children (most have none).
    #[inline(never)]
    fn release_children(&mut self, id: u32) {
        loop {
            let child = self.frames[id as usize].first_child;
            if child == NONE {
                break;
            }
            match self.frames[child as usize].state {
                State::Invocation { .. } | State::Async { .. } => {
                    self.unlink(child);
                    self.frames[child as usize].parent = NONE;
                }
                _ => self.release(child),
            }
        }
    }

    #[inline]
    pub(super) fn valid(&self, frame: u32, generation: u32) -> bool {
        // `NONE` is past every frame (at most `MAX_FRAMES_IN_FLIGHT` exist): one bounds test.
        self.frames
            .get(frame as usize)
            .is_some_and(|f| f.generation == generation)
    }

    /// Finishes `id` and reports `outcome` to its parent.
    #[inline]
    pub(super) fn complete(&mut self, id: u32, outcome: u8) {
        let Frame {
            parent,
            parent_generation,
            ..
        } = self.frames[id as usize];
        self.release(id);
        if self.valid(parent, parent_generation) {
            self.child_done(parent, outcome);
        }
    }

    /// Reports `outcome` to `parent` through the queue (for results known at once; keeps
    /// a step's start from re-entering its parent).
    pub(super) fn deliver_later(&mut self, parent: u32, outcome: u8) {
        if parent != NONE {
            let generation = self.frames[parent as usize].generation;
            self.push(0, Kind::Deliver, parent, generation, outcome, 0, 0);
        }
    }
}
