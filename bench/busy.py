"""slurmctld's cost of one collection cycle on a busy cluster (jobs start
and end all the time, nodes change state), for this exporter and for the
commands a shelling exporter runs per cycle (squeue, sinfo, sdiag with the
CycleCloud exporter's arguments).

A busy workload's own RPCs drown any per-minute total, so each side runs
as its own user (`daemon`) while the workload runs as root, and its cost
is read from slurmctld's statistics by user (sdiag): RPCs and their total
server time for that uid alone. Ours: the daemon at its default intervals
(accounting and slurmdbd collectors off: they ask slurmdbd, not
slurmctld), per jobs-collector cycle (15 s), everything else it asks in
between included. Baseline: the three commands, per run of the three.
"""
import argparse, os, re, subprocess, threading, time, urllib.request

from bench import BASELINE, free_port, sh

USER = "daemon"


def by_user(uid_name):
    """(count, total_time_us) of one user in sdiag's statistics by user."""
    out = sh("sdiag")
    part = out.split("Remote Procedure Call statistics by user", 1)[1]
    part = part.split("Pending RPC statistics", 1)[0]
    for m in re.finditer(r"^\s*(\S+)\s*\(\s*\d+\)\s+count:(\d+)\s+ave_time:\d+\s+total_time:(\d+)", part, re.M):
        if m.group(1) == uid_name:
            return int(m.group(2)), int(m.group(3))
    return 0, 0


def workload(stop):
    """Keeps the three nodes busy with short jobs: every few seconds jobs
    start and end and nodes go between idle, mixed and allocated."""
    while not stop.is_set():
        subprocess.run(["sbatch", "-Q", "-p", "debug", "-w", "node[1-3]", "--array=0-11", "-n", "1",
                        "-o", "/dev/null", "--wrap", "sleep 2"], capture_output=True)
        stop.wait(3)


def requests(port, source):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith("slurm_exporter_slurmctld_requests_total{") and f'source="{source}"' in l)


def as_user(cmd):
    return ["runuser", "-u", USER, "--", "env", f"SLURM_CONF={os.environ['SLURM_CONF']}"] + cmd


def ours(exporter, seconds):
    port = free_port()
    p = subprocess.Popen(as_user([exporter, "run", f"--web.listen-address=127.0.0.1:{port}",
                                  "--no-collector.accounting", "--no-collector.dbd"]),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2).read()
                break
            except Exception:
                if p.poll() is not None or time.time() > deadline:
                    raise SystemExit("our exporter never became ready (as user daemon)")
                time.sleep(0.5)
        time.sleep(20)  # past the first loads and minute-interval collectors' first run
        j0, (c0, t0) = requests(port, "jobs"), by_user(USER)
        time.sleep(seconds)
        j1, (c1, t1) = requests(port, "jobs"), by_user(USER)
        cycles = j1 - j0
        return dict(cycles=cycles, rpcs=(c1 - c0) / cycles, rpc_ms=(t1 - t0) / 1000 / cycles)
    finally:
        p.terminate(); p.wait()


def baseline(cycles):
    c0, t0 = by_user(USER)
    for _ in range(cycles):
        for cmd in BASELINE:
            subprocess.run(as_user(cmd), check=True, capture_output=True)
    c1, t1 = by_user(USER)
    return dict(cycles=cycles, rpcs=(c1 - c0) / cycles, rpc_ms=(t1 - t0) / 1000 / cycles)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exporter", required=True)
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--baseline-cycles", type=int, default=10)
    a = ap.parse_args()
    stop = threading.Event()
    t = threading.Thread(target=workload, args=(stop,), daemon=True)
    t.start()
    time.sleep(10)
    try:
        o = ours(a.exporter, a.seconds)
        b = baseline(a.baseline_cycles)
        w = by_user("root")
    finally:
        stop.set(); t.join()
    print()
    print(f"busy cluster: jobs start and end every few seconds ({w[0]} RPCs by root, the workload, so far)")
    print(f"{'slurmctld per collection cycle':34} {'ours':>10} {'baseline':>10} {'ours/baseline':>14}")
    for k, label in [("rpcs", "RPCs"), ("rpc_ms", "RPC server time (ms)")]:
        print(f"{label:34} {o[k]:10.2f} {b[k]:10.2f} {o[k] / b[k] if b[k] else float('nan'):14.3f}")
    print(f"ours over {o['cycles']:.0f} jobs-collector cycles (15 s, everything else it asked in between included); "
          f"baseline over {b['cycles']} runs of squeue + sinfo + sdiag; both as user {USER}, read from sdiag's statistics by user")


if __name__ == "__main__":
    main()
