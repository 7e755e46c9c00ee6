//! The writer's own tests.

use super::*;

#[tokio::test(flavor = "current_thread")]
async fn a_quick_future_is_waited_for_on_the_thread_and_a_slow_one_is_awaited() {
    // Ready after another thread's work, inside the budget: no yield on the way.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || tx.send(7));
    let other = tokio::spawn(async { 1 });
    let quick = wait_here(pin!(rx), Duration::from_secs(60), SPIN_FOR);
    assert_eq!(quick.map(Result::unwrap), Some(7));
    assert!(
        !other.is_finished(),
        "the thread was not given to other tasks"
    );

    // Past the budget the future is awaited as usual: other tasks run meanwhile, and the
    // future still ends (its waker is the task's from then on).
    let (tx, rx) = tokio::sync::oneshot::channel::<i32>();
    let ran = tokio::spawn(async move {
        tx.send(8).unwrap();
    });
    let started = Instant::now();
    assert_eq!(hot(rx).await.unwrap(), 8);
    assert!(
        started.elapsed() >= HOT_FOR,
        "waited out the budget before yielding"
    );
    assert!(ran.is_finished());
    assert_eq!(other.await.unwrap(), 1);
}
