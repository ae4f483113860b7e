//! A bounded worker pool: run a function on every item with at most
//! `forks` at once (`--forks`), results in item order; the head's item
//! first and alone when the workers ride its connection.

/// Run `f` on every item with at most `forks` at once; results in item order.
pub fn parallel<T: Sync, R: Send>(items: &[T], forks: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..forks.max(1).min(items.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                if let Ok(mut o) = out.lock() {
                    o[i] = Some(r);
                }
            });
        }
    });
    out.into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

/// [`parallel`], but the item `is_head` picks runs first and alone: the
/// workers behind the head then find its connection open and ride it (the
/// openssh transport's jump is a mux client of the head's master) instead of
/// racing to open one each, which would cost every worker a second key
/// exchange. Results in item order.
pub fn head_first<T: Sync, R: Send>(
    items: &[T],
    forks: usize,
    is_head: impl Fn(&T) -> bool,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let Some(h) = items.iter().position(&is_head) else {
        return parallel(items, forks, f);
    };
    let head = f(&items[h]);
    let rest: Vec<&T> = items
        .iter()
        .enumerate()
        .filter_map(|(i, t)| (i != h).then_some(t))
        .collect();
    let mut out = parallel(&rest, forks, |t| f(t));
    out.insert(h, head);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head's work ends before any worker's starts; results stay in
    /// item order.
    #[test]
    fn head_first_runs_the_head_alone_then_the_rest() {
        let items = ["w1", "head", "w2", "w3"];
        let log = std::sync::Mutex::new(Vec::new());
        let out = head_first(
            &items,
            4,
            |n| *n == "head",
            |n| {
                log.lock().unwrap().push(format!("start {n}"));
                std::thread::sleep(std::time::Duration::from_millis(20));
                log.lock().unwrap().push(format!("end {n}"));
                n.to_uppercase()
            },
        );
        assert_eq!(out, ["W1", "HEAD", "W2", "W3"]);
        let log = log.into_inner().unwrap();
        assert_eq!(log[..2], ["start head", "end head"], "{log:?}");
        assert_eq!(log.len(), 8);
        let none = head_first(&items, 2, |_| false, |n| n.len());
        assert_eq!(none, [2, 4, 2, 2]);
    }
}
