// Timers and microtasks. There is no event loop thread: whenever the
// microtask queue is empty and the handler's promise is still pending, the
// engine calls internal.runEventLoop() (fetch.js), which waits for the next
// timer or fetch response; runTimers() is its timers-only half.
(function (native, global, internal) {
  "use strict";

  const timers = new Map(); // id -> { due, order, callback, args, interval }
  let nextId = 1;
  let nextOrder = 0;

  function reportUncaught(error) {
    native.log("error", "Uncaught " + internal.inspect(error));
  }

  function schedule(callback, delay, args, repeat) {
    if (typeof callback !== "function") {
      throw new TypeError("the callback passed to a timer must be a function (edgefn does not evaluate strings)");
    }
    const wait = Math.max(0, Number(delay) || 0);
    const id = nextId++;
    // A zero-delay interval would spin forever; browsers clamp too.
    const interval = repeat ? Math.max(1, wait) : null;
    timers.set(id, { due: native.now() + wait, order: nextOrder++, callback, args, interval });
    return id;
  }

  const setTimeout = (callback, delay = 0, ...args) => schedule(callback, delay, args, false);
  const setInterval = (callback, delay = 0, ...args) => schedule(callback, delay, args, true);
  const clearTimeout = (id) => { timers.delete(Number(id)); };
  const clearInterval = clearTimeout;

  function queueMicrotask(callback) {
    if (typeof callback !== "function") throw new TypeError("queueMicrotask: the callback must be a function");
    Promise.resolve().then(() => {
      try {
        callback();
      } catch (error) {
        reportUncaught(error);
      }
    });
  }

  function earliest() {
    let first = null;
    for (const [id, timer] of timers) {
      if (!first || timer.due < first[1].due || (timer.due === first[1].due && timer.order < first[1].order)) {
        first = [id, timer];
      }
    }
    return first;
  }

  /** Milliseconds until the next timer is due (0 if overdue), or -1 if none. */
  function nextTimerDelay() {
    const first = earliest();
    return first ? Math.max(0, first[1].due - native.now()) : -1;
  }

  /** Sleeps until the next timer is due and runs it; false if there is none. */
  function runTimers() {
    const wait = nextTimerDelay();
    if (wait < 0) return false;
    if (wait > 0) native.sleep(wait);
    fireDueTimers();
    return true;
  }

  /** Runs every timer that is due now. */
  function fireDueTimers() {
    const now = native.now();
    const due = [...timers].filter(([, t]) => t.due <= now).sort(([, a], [, b]) => a.due - b.due || a.order - b.order);
    for (const [id, timer] of due) {
      if (!timers.has(id)) continue; // cleared by an earlier callback
      if (timer.interval === null) {
        timers.delete(id);
      } else {
        timer.due = now + timer.interval;
        timer.order = nextOrder++;
      }
      try {
        timer.callback(...timer.args);
      } catch (error) {
        reportUncaught(error);
      }
    }
  }

  Object.assign(internal, { runTimers, nextTimerDelay, fireDueTimers });
  internal.install(global, { setTimeout, clearTimeout, setInterval, clearInterval, queueMicrotask });
})
