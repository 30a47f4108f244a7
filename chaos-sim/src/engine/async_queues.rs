//! Asynchronous invocations (the platform's retries and event age) and SQS queues with their event source.

use super::*;

impl<'p> Engine<'p> {
    pub(super) fn start_async(&mut self, parent: u32, function: usize, key: u64) {
        self.m.async_events += 1;
        let id = self.alloc(
            parent,
            NONE,
            key,
            u64::MAX,
            State::Async {
                function: function as u32,
                first: self.now,
                error_retries: 0,
                throttle_retries: 0,
            },
        );
        self.async_try(id);
    }

    pub(super) fn async_try(&mut self, id: u32) {
        let f = self.frames[id as usize];
        let State::Async {
            function,
            first,
            error_retries,
            throttle_retries,
        } = f.state
        else {
            return;
        };
        let attempt = error_retries + throttle_retries;
        if self
            .start_invocation(id, function as usize, f.key, attempt)
            .is_err()
        {
            // Throttled events go back to the platform queue: backoff from 1 s up to 5 min
            // (FACTS.md), until the maximum event age.
            let delay = (SECOND << throttle_retries.min(9)).min(300 * SECOND);
            let max_age = nanos(
                self.prog.functions[function as usize]
                    .async_config
                    .max_event_age,
            );
            if self.now.saturating_add(delay).saturating_sub(first) > max_age {
                self.m.dead_lettered += 1;
                return self.complete(id, outcome::THROTTLE);
            }
            self.m.async_retries += 1;
            self.frames[id as usize].state = State::Async {
                function,
                first,
                error_retries,
                throttle_retries: throttle_retries + 1,
            };
            self.timer(delay, Kind::AsyncRetry, id, 0);
        }
    }

    pub(super) fn async_result(&mut self, id: u32, out: u8) {
        let State::Async {
            function,
            first,
            error_retries,
            throttle_retries,
        } = self.frames[id as usize].state
        else {
            return;
        };
        if !outcome::is_failure(out) {
            return self.complete(id, out);
        }
        let config = self.prog.functions[function as usize].async_config;
        // Function errors are retried 1 min, then 2 min later (FACTS.md).
        let delay = 60 * SECOND * u64::from(error_retries + 1);
        if error_retries >= config.max_retry_attempts
            || self.now.saturating_add(delay).saturating_sub(first) > nanos(config.max_event_age)
        {
            self.m.dead_lettered += 1;
            return self.complete(id, out);
        }
        self.m.async_retries += 1;
        self.frames[id as usize].state = State::Async {
            function,
            first,
            error_retries: error_retries + 1,
            throttle_retries,
        };
        self.timer(delay, Kind::AsyncRetry, id, 0);
    }

    // ---------------------------------------------------------------- queues

    pub(super) fn publish(&mut self, queue: usize, root: u32, root_generation: u32, key: u64) {
        let q = &mut self.queues[queue];
        q.first_message_at.get_or_insert(self.now);
        q.messages.push_back(Message {
            root,
            root_generation,
            key,
            receives: 0,
        });
        self.m.messages_published += 1;
        self.queue_dispatch(queue);
    }

    /// Concurrent batches allowed now: 5 at first, +300 per minute (FACTS.md), up to the max.
    pub(super) fn queue_cap(&self, queue: usize) -> u32 {
        let def = &self.prog.queues[queue];
        let since = self.queues[queue]
            .first_message_at
            .map_or(0, |t| self.now - t);
        let grown = 5 + since / QUEUE_SCALE_STEP;
        def.max_concurrency
            .min(u32::try_from(grown).unwrap_or(u32::MAX))
    }

    pub(super) fn queue_dispatch(&mut self, queue: usize) {
        loop {
            let cap = self.queue_cap(queue);
            let def = &self.prog.queues[queue];
            let q = &mut self.queues[queue];
            if q.messages.is_empty() {
                return;
            }
            if q.in_flight >= cap {
                if cap < def.max_concurrency {
                    // The scaling cap, not the message count, holds messages back: poll
                    // again when the cap next rises, not only when a batch finishes
                    // (batches may run for minutes while the event source keeps scaling).
                    let since = q.first_message_at.map_or(0, |t| self.now - t);
                    let delay = QUEUE_SCALE_STEP - since % QUEUE_SCALE_STEP;
                    self.schedule_poll_in(queue, delay);
                }
                return;
            }
            let take = (def.batch_size as usize).min(q.messages.len());
            let batch_id = match self.free_batches.pop() {
                Some(b) => b,
                None => {
                    self.batches.push(Vec::new());
                    (self.batches.len() - 1) as u32
                }
            };
            let batch = &mut self.batches[batch_id as usize];
            batch.clear();
            batch.extend(q.messages.drain(..take));
            for m in batch.iter_mut() {
                m.receives += 1;
            }
            let key = combine(batch[0].key, u64::from(batch[0].receives));
            q.in_flight += 1;
            let consumer = def.consumer;
            let id = self.alloc(
                NONE,
                NONE,
                key,
                u64::MAX,
                State::Batch {
                    queue: queue as u32,
                    batch: batch_id,
                },
            );
            if self.start_invocation(id, consumer, key, 0).is_err() {
                // Throttled: the messages stay invisible for the visibility timeout, then
                // return; the receive counts already went up.
                self.settle_batch(id, outcome::THROTTLE);
                self.schedule_poll(queue);
                return;
            }
        }
    }

    pub(super) fn batch_result(&mut self, id: u32, out: u8) {
        if let Some(queue) = self.settle_batch(id, out) {
            self.queue_dispatch(queue);
        }
    }

    /// Settles a finished (or throttled) batch; returns its queue when a worker slot freed
    /// up and more messages may be dispatched now.
    pub(super) fn settle_batch(&mut self, id: u32, out: u8) -> Option<usize> {
        let State::Batch { queue, batch } = self.frames[id as usize].state else {
            return None;
        };
        let queue = queue as usize;
        self.queues[queue].in_flight -= 1;
        let max_receives = self.prog.queues[queue].max_receives;
        let mut messages = std::mem::take(&mut self.batches[batch as usize]);
        if outcome::is_failure(out) {
            // Dead-letter the messages out of receives; the rest come back later.
            let mut kept = 0;
            for i in 0..messages.len() {
                let m = messages[i];
                if m.receives >= max_receives {
                    self.m.dead_lettered += 1;
                    if self.valid(m.root, m.root_generation) {
                        self.child_done(m.root, out);
                    }
                } else {
                    messages[kept] = m;
                    kept += 1;
                }
            }
            messages.truncate(kept);
            if !messages.is_empty() {
                self.m.redeliveries += messages.len() as u64;
                self.batches[batch as usize] = messages;
                let delay = self.prog.queues[queue].visibility_timeout_ns;
                self.push(delay, Kind::QueueRedeliver, NONE, 0, 0, queue as u16, batch);
                self.release(id);
                // A queue with a timer pending: poll it so remaining messages keep flowing.
                self.schedule_poll(queue);
                return None;
            }
        } else {
            for m in &messages {
                if self.valid(m.root, m.root_generation) {
                    self.child_done(m.root, out);
                }
            }
        }
        messages.clear();
        self.batches[batch as usize] = messages;
        self.free_batches.push(batch);
        self.release(id);
        Some(queue)
    }

    pub(super) fn schedule_poll(&mut self, queue: usize) {
        self.schedule_poll_in(queue, SECOND);
    }

    /// Polls the queue `delay` from now, unless a poll is already pending (at most one per
    /// queue, so the event order stays a function of the seed alone).
    pub(super) fn schedule_poll_in(&mut self, queue: usize, delay: u64) {
        if !self.queues[queue].poll_pending && !self.queues[queue].messages.is_empty() {
            self.queues[queue].poll_pending = true;
            self.push(delay, Kind::QueuePoll, NONE, 0, 0, 0, queue as u32);
        }
    }

    pub(super) fn queue_redeliver(&mut self, queue: usize, batch: u32) {
        let mut messages = std::mem::take(&mut self.batches[batch as usize]);
        self.queues[queue].messages.extend(messages.iter().copied());
        messages.clear();
        self.batches[batch as usize] = messages;
        self.free_batches.push(batch);
        self.queue_dispatch(queue);
    }
}
