"""Supervision: the restart schedule, each unit's step, liveness judged from facts, and the
supervisor itself as a real process over real (harmless) children."""
import os
import signal
import subprocess
import sys
import time

import pytest

from tenet.lab import restart
from tenet.lab.liveness import Beat, Liveness, ProcFacts, facts, heartbeat, judge
from tenet.lab.netns import LabError
from tenet.lab.restart import RestartPolicy
from tenet.lab.supervision import Supervision
from tenet.lab.unit import Do, Phase, UnitSpec, UnitStatus, Want, decide, describe_exit, exited, signalled, started

P = RestartPolicy()  # 0.2 s doubling to 3.2 s; 5 starts within 30 s


def test_the_delay_doubles_with_each_recent_start_up_to_the_cap():
    assert restart.schedule(P, 10) == [0.2, 0.4, 0.8, 1.6]  # the 5th start's failure hits the limit
    assert restart.schedule(RestartPolicy(burst=8, interval=60), 10) == [0.2, 0.4, 0.8, 1.6, 3.2, 3.2, 3.2]
    assert restart.schedule(P, 10, runtime=4.0) == [0.2, 0.4, 0.8, 1.6]  # slow to die: still limited


def test_a_process_that_ran_for_a_while_restarts_after_the_first_delay():
    assert restart.schedule(P, 5, runtime=31.0) == [0.2] * 5  # each start left the interval: never limited
    assert restart.delay([0.0], 31.0, P) == 0.2 and restart.may_start([0.0], 31.2, P)


def test_an_impossible_policy_is_refused():
    with pytest.raises(ValueError):
        RestartPolicy(initial=0)


SPEC = UnitSpec("agent", "h1", ("true",), "/dev/null", "t1")


def running(now: float = 100.0) -> UnitStatus:
    return started(SPEC, None, 42, 7, now, P)


def test_a_failure_backs_off_then_starts_again_and_counts():
    st = exited(running(), -9, 101.0, P)
    assert (st.phase, st.due, describe_exit(st.last_exit)) == (Phase.BACKOFF, 101.2, "SIGKILL")
    assert decide(SPEC, st, 101.1) is Do.NOTHING and decide(SPEC, st, 101.2) is Do.START
    again = started(SPEC, st, 43, 8, 101.2, P)
    assert (again.phase, again.restarts, again.pid, again.starts) == (Phase.RUNNING, 1, 43, (100.0, 101.2))


def test_a_clean_exit_is_not_a_failure():
    st = exited(running(), 0, 101.0, P)
    assert st.phase is Phase.EXITED and decide(SPEC, st, 200.0) is Do.NOTHING


def test_the_start_limit_leaves_it_failed_and_says_so():
    st, now = running(0.0), 0.0
    while st.phase is not Phase.FAILED:
        st = exited(st, 1, now, P)
        if st.phase is Phase.BACKOFF:
            now = st.due
            st = started(SPEC, st, 1, 1, now, P)
    assert st.restarts == 4 and "start limit" in st.error and decide(SPEC, st, now + 100) is Do.NOTHING
    fresh = UnitSpec(**{**SPEC.__dict__, "token": "t2"})  # the lab starting it anew clears it
    assert decide(fresh, st, now) is Do.START and started(fresh, st, 5, 5, now, P).restarts == 0


def test_a_stop_on_purpose_is_never_restarted():
    stop = UnitSpec(**{**SPEC.__dict__, "want": Want.STOP, "signal": signal.SIGKILL})
    st = running()
    assert decide(stop, st, 101.0) is Do.SIGNAL
    st = signalled(st, 101.0)
    assert decide(stop, st, 200.0) is Do.NOTHING  # SIGKILL sent: nothing to escalate
    st = exited(st, -9, 101.01, P)
    assert st.phase is Phase.STOPPED and decide(stop, st, 200.0) is Do.NOTHING
    assert decide(stop, exited(running(), 1, 101.0, P), 101.0) is Do.SETTLE  # a pending restart is cancelled


def test_a_sigterm_stop_escalates_after_the_grace_and_a_new_token_replaces_the_process():
    st = signalled(running(), 101.0)
    assert decide(UnitSpec(**{**SPEC.__dict__, "want": Want.STOP}), st, 102.0) is Do.NOTHING
    assert decide(UnitSpec(**{**SPEC.__dict__, "want": Want.STOP}), st, 104.0) is Do.KILL
    new = UnitSpec(**{**SPEC.__dict__, "token": "t2"})
    assert decide(new, running(), 101.0) is Do.SIGNAL  # the old one goes first …
    assert decide(new, exited(signalled(running(), 101.0), -15, 101.1, P), 101.1) is Do.START  # … then the new
    assert decide(None, running(), 101.0) is Do.SIGNAL  # forgotten: stopped


def test_liveness_is_judged_from_what_proc_shows_now():
    assert judge(ProcFacts(True, "S", 7), 7) is Liveness.ALIVE
    assert judge(ProcFacts(True, "T", 7), 7) is Liveness.ALIVE  # paused on purpose (SIGSTOP): still there
    assert judge(ProcFacts(True, "Z", 7), 7) is Liveness.ZOMBIE
    assert judge(ProcFacts(True, "S", 9), 7) is Liveness.RECYCLED
    assert judge(ProcFacts(False), 7) is Liveness.GONE
    me = facts(os.getpid())
    assert judge(me, me.start_time) is Liveness.ALIVE


def test_a_heartbeat_is_stale_once_a_renewal_was_missed():
    assert heartbeat(5, 4.0).beat is Beat.FRESH  # renewed 1 s ago (every 5/3 s)
    hb = heartbeat(5, 1.5)
    assert (hb.beat, hb.age, hb.bound) == (Beat.STALE, 3.5, 3.33)
    assert heartbeat(None, None).beat is Beat.NONE and heartbeat(5, 0.0).beat is Beat.NONE


@pytest.fixture
def supervisor(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "tenet.lab.supervisor", "--dir", str(tmp_path)],
                         stdout=open(tmp_path / "supervisor.log", "wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while not (tmp_path / "supervisor.sock").exists():
        assert p.poll() is None and time.monotonic() < deadline, (tmp_path / "supervisor.log").read_text()
        time.sleep(0.01)
    yield Supervision(tmp_path)
    p.terminate()
    p.wait(10)


def wait_for(check, timeout: float):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return value


def test_the_supervisor_restarts_a_killed_child_and_gives_up_on_one_that_keeps_failing(supervisor, tmp_path):
    first = supervisor.start("sleeper", "n", ["sleep", "60"], str(tmp_path / "s.log"), order=1)
    os.kill(first.pid, signal.SIGKILL)  # behind its back: a crash
    again = wait_for(lambda: (s := supervisor.status("sleeper", "n")).restarts == 1 and s.phase is Phase.RUNNING and s, 5)
    assert again.pid != first.pid and describe_exit(again.last_exit) == "SIGKILL"
    supervisor.stop("sleeper", "n", signal.SIGKILL)  # on purpose: stays stopped
    time.sleep(0.5)
    assert supervisor.status("sleeper", "n").phase is Phase.STOPPED
    t0 = time.monotonic()
    supervisor.start("crasher", "n", ["sh", "-c", "exit 3"], str(tmp_path / "c.log"), order=2)
    failed = wait_for(lambda: (s := supervisor.status("crasher", "n")).phase is Phase.FAILED and s, 10)
    assert failed.restarts == 4 and failed.last_exit == 3 and "start limit" in failed.error
    assert 2.5 < time.monotonic() - t0 < 6  # 0.2 + 0.4 + 0.8 + 1.6 s of backoff


def test_a_command_that_cannot_run_fails_at_once(supervisor, tmp_path):
    with pytest.raises(LabError, match="cannot start"):
        supervisor.start("ghost", "n", ["/nonexistent/tenet-nothing"], str(tmp_path / "g.log"), order=1)
