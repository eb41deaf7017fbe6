"""What the plugin costs slurmctld: job submission throughput and
slurmctld CPU time with and without job_submit_ha_exporter.so loaded, on
the same embedded cluster, in one run, rounds alternating so drift hits
both sides alike.

Each round: (re)start slurmctld with or without the plugin, wait until it
serves (the plugin active and collecting), submit N held jobs with sbatch
from W parallel workers, measure the wall time and slurmctld's CPU time
(/proc/<pid>/stat), then cancel them and wait for an empty queue.

The plugin runs with the embedded cluster's test intervals (jobs every 2 s,
finished jobs every 3 s, 7x and 20x more often than the defaults), so the
figure is an upper bound of what the defaults cost.
"""
import argparse, concurrent.futures, os, statistics, subprocess, time, urllib.request


def sh(*args, check=True, env=None):
    return subprocess.run(args, check=check, capture_output=True, text=True, env=env).stdout


def wait_for(what, deadline, f):
    end = time.time() + deadline
    while not f():
        if time.time() > end:
            raise SystemExit(f"timed out after {deadline}s waiting for {what}")
        time.sleep(0.3)


def ctld_pid(embed_dir):
    with open(os.path.join(embed_dir, "run", "slurmctld.pid")) as f:
        return int(f.read().strip())


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat (11 and 12 after the name).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def plugin_active(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return b"slurm_exporter_active 1" in r.read()
    except OSError:
        return False


def start_cluster(repo, with_plugin, plugin, helper, port):
    env = dict(os.environ)
    if with_plugin:
        env.update(EMBED_PLUGIN=plugin, EMBED_HELPER=helper, EMBED_PLUGIN_PORT=str(port))
    else:
        env.pop("EMBED_PLUGIN", None)
    # Restarts slurmctld when its slurm.conf changed (plugin on or off).
    sh(os.path.join(repo, "scripts", "embedded-slurm.sh"), "start", env=env)
    wait_for("slurmctld", 60, lambda: "is UP" in sh("scontrol", "ping", check=False))
    if with_plugin:
        wait_for("the plugin", 60, lambda: plugin_active(port))


def queue_empty():
    return sh("squeue", "-h", "-o", "%i", check=False).strip() == ""


def one_round(n, workers, embed_dir):
    pid = ctld_pid(embed_dir)
    cpu0, t0 = cpu_seconds(pid), time.time()

    def submit(_):
        subprocess.run(["sbatch", "-Q", "-H", "-p", "debug", "--wrap", "true"],
                       check=True, capture_output=True)

    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        list(ex.map(submit, range(n)))
    wall = time.time() - t0
    cpu = cpu_seconds(pid) - cpu0
    sh("scancel", "--quiet", "-u", str(os.getuid()), check=False)
    wait_for("the queue to empty", 300, queue_empty)
    return wall, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="rounds per side")
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--helper", required=True)
    ap.add_argument("--port", type=int, default=19180)
    a = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    embed_dir = os.environ["EMBED_DIR"]
    results = {False: [], True: []}
    for r in range(a.rounds):
        for with_plugin in (False, True):
            start_cluster(repo, with_plugin, a.plugin, a.helper, a.port)
            wall, cpu = one_round(a.jobs, a.workers, embed_dir)
            results[with_plugin].append((wall, cpu))
            side = "with plugin   " if with_plugin else "without plugin"
            print(f"round {r + 1} {side}: {a.jobs} sbatch in {wall:6.2f} s "
                  f"({a.jobs / wall:7.1f} jobs/s), slurmctld CPU {cpu:6.2f} s", flush=True)
    start_cluster(repo, False, a.plugin, a.helper, a.port)
    rate = {k: statistics.median(a.jobs / w for w, _ in v) for k, v in results.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in results.items()}
    spread = {k: (max(a.jobs / w for w, _ in v) - min(a.jobs / w for w, _ in v)) / rate[k]
              for k, v in results.items()}
    print()
    print(f"submission rate (median of {a.rounds}): without {rate[False]:.1f} jobs/s, "
          f"with {rate[True]:.1f} jobs/s; with/without = {rate[True] / rate[False]:.3f} "
          f"({(1 - rate[True] / rate[False]) * 100:+.1f}% slower)")
    print(f"round-to-round spread: without {spread[False] * 100:.1f}%, with {spread[True] * 100:.1f}%")
    print(f"slurmctld CPU per round (median): without {cpu[False]:.2f} s, with {cpu[True]:.2f} s; "
          f"ratio {cpu[True] / max(cpu[False], 1e-9):.3f}")


if __name__ == "__main__":
    main()
