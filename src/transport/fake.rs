//! An in-memory host for unit tests of the engine: scripts are recorded and
//! answered by a closure. Never the proof that a feature works on real hosts.

use std::sync::Mutex;

use super::{Output, Transport, TransportError};

type Answer = Box<dyn Fn(&str) -> Result<Output, TransportError> + Send + Sync>;

pub struct FakeHost {
    answer: Answer,
    pub scripts: Mutex<Vec<String>>,
}

impl FakeHost {
    pub fn new(
        answer: impl Fn(&str) -> Result<Output, TransportError> + Send + Sync + 'static,
    ) -> Self {
        FakeHost {
            answer: Box::new(answer),
            scripts: Mutex::new(Vec::new()),
        }
    }
}

impl Transport for FakeHost {
    fn run(&self, script: &str) -> Result<Output, TransportError> {
        if let Ok(mut s) = self.scripts.lock() {
            s.push(script.to_string());
        }
        (self.answer)(script)
    }
    fn round_trips(&self) -> usize {
        self.scripts.lock().map(|s| s.len()).unwrap_or(0)
    }
    fn describe(&self) -> String {
        "fake".into()
    }
}
