"""Shows that a call releases the GIL: run it in a worker thread and count
how many turns this thread gets meanwhile (none if the GIL were held)."""
import threading
import time


def turns_while(fn):
    """-> (turns this thread took while fn ran in another thread, fn's result)."""
    done, out = threading.Event(), []

    def work():
        out.append(fn())
        done.set()

    t = threading.Thread(target=work)
    t.start()
    turns = 0
    while not done.is_set():
        turns += 1
        time.sleep(0)
    t.join()
    return turns, out[0]
