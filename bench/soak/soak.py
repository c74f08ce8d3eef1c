#!/usr/bin/env python3
"""The soak run (issue 17 item 8): many small builds back to back on a cached
base, with cancels, SIGKILLs and failing validations mixed in at random, then
a check that nothing was left behind.

  bench/soak/soak.py [--imagesmith BIN] [--builds N] [--seed S] [--catalog DIR]
                     [--results FILE]

See bench/soak/README.md. Exit status 0 when every build ended as expected and
nothing was left over; 1 otherwise (the summary says what).
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

KINDS = ("ok", "cancel", "kill", "valfail")


def now():
    return time.monotonic()


class Soak:
    def __init__(self, args):
        self.bin = os.path.abspath(args.imagesmith)
        self.home = tempfile.mkdtemp(prefix="imagesmith-soak.", dir="/var/tmp")
        if args.catalog:
            os.symlink(os.path.abspath(args.catalog), os.path.join(self.home, "catalog"))
        self.work = os.path.join(self.home, "templates")
        os.makedirs(self.work)
        self.env = dict(os.environ, IMAGESMITH_HOME=self.home)
        self.rng = random.Random(args.seed)
        self.marker = "imagesmith-soak-%d" % os.getpid()
        self.pids = set()  # imagesmith processes this run started or saw as workers
        self.problems = []
        self.counts = {k: {"runs": 0, "expected": 0, "seconds": 0.0} for k in KINDS}
        self.outcomes = {}
        self.disk_samples = []
        self.stop_file = args.stop_file

    def cli(self, *args, timeout=1800, check=False):
        p = subprocess.run([self.bin, *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError("imagesmith %s: exit %d: %s" % (" ".join(args), p.returncode,
                                                               p.stderr.strip()))
        return p

    def setup(self):
        sub = json.loads(self.cli("account", "show", check=True).stdout)["id"]
        self.cli("group", "create", "-n", "soak", "-l", "eastus", check=True)
        self.cli("sig", "create", "-g", "soak", "-r", "gal", check=True)
        self.cli("sig", "image-definition", "create", "-g", "soak", "-r", "gal", "-i", "deb",
                 "--publisher", "me", "--offer", "debian", "--sku", "12", "--os-type", "Linux",
                 "--hyper-v-generation", "V2", check=True)
        self.definition = ("/subscriptions/%s/resourceGroups/soak/providers/Microsoft.Compute/"
                           "galleries/gal/images/deb" % sub)

    def template(self, i, kind):
        # Five template names, so runs replace templates, the step cache hits
        # and old runs pile up per template as they would for a user.
        steps = [{"type": "Shell", "name": "base", "inline": ["echo soak > /etc/soak-base"]}]
        for k in range(self.rng.randint(0, 2)):
            steps.append({"type": "Shell", "name": "s%d" % k,
                          "inline": ["echo %d > /etc/soak-%d" % (self.rng.randint(0, 3), k)]})
        if kind in ("cancel", "kill"):
            # Something to interrupt: the kill or cancel lands in a step, the
            # disk, ingest or publishing, depending on the random delay.
            steps.append({"type": "Shell", "name": "slow",
                          "inline": ["sleep %d # %s" % (self.rng.randint(1, 6), self.marker),
                                     "echo %d > /etc/soak-slow" % i]})
        props = {
            "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12",
                       "sku": "12-gen2", "version": "latest"},
            "customize": steps,
            "distribute": [{"type": "SharedImage", "runOutputName": "gal",
                            "galleryImageId": self.definition,
                            "targetRegions": [{"name": "eastus"}, {"name": "westus2"}]}],
        }
        if kind == "valfail":
            props["validate"] = {"inVMValidations": [
                {"type": "Shell", "name": "fails", "inline": ["echo soak validation fails", "exit 3"]}]}
        doc = {"type": "Microsoft.VirtualMachineImages/imageTemplates", "apiVersion": "2022-07-01",
               "location": "eastus", "properties": props}
        name = "t%d" % (i % 5)
        path = os.path.join(self.work, "%s-%d.json" % (name, i))
        with open(path, "w") as f:
            json.dump(doc, f)
        return name, path

    def last_run(self, name):
        p = self.cli("image-template", "show", "-g", "soak", "-n", name)
        if p.returncode != 0:
            return "missing", p.stderr
        last = json.loads(p.stdout)["properties"].get("lastRunStatus", {})
        return last.get("runState", "none"), last.get("message", "")

    def note_owner(self, op):
        owner = op.get("owner") or ""
        parts = owner.split(":")
        if len(parts) >= 3 and parts[-2].isdigit():
            self.pids.add(int(parts[-2]))

    def one(self, i, kind):
        name, path = self.template(i, kind)
        t0 = now()
        expected = False
        state, message = "?", ""
        if kind in ("ok", "valfail"):
            p = self.cli("build", path, "-g", "soak", "-n", name)
            state, message = self.last_run(name)
            if kind == "ok":
                expected = p.returncode == 0 and state == "Succeeded"
            else:
                expected = (p.returncode != 0 and state == "Failed"
                            and "validation failed" in message)
        elif kind == "cancel":
            p = self.cli("build", path, "-g", "soak", "-n", name, "--no-wait", check=True)
            op = json.loads(p.stdout)
            time.sleep(self.rng.uniform(1, 10))
            shown = self.cli("operation", "show", "--id", op["name"])
            if shown.returncode == 0:
                self.note_owner(json.loads(shown.stdout))
            c = self.cli("image-template", "cancel", "-g", "soak", "-n", name)
            w = self.cli("operation", "wait", "--id", op["name"], "--timeout", "900")
            done = json.loads(w.stdout) if w.stdout.strip() else {}
            self.note_owner(done)
            state, message = self.last_run(name)
            # Canceled; or it finished first (then the cancel was refused: no run in progress).
            expected = ((done.get("status") == "Canceled" and state == "Canceled")
                        or (done.get("status") == "Succeeded" and state == "Succeeded"
                            and c.returncode != 0))
        else:  # kill
            proc = subprocess.Popen([self.bin, "build", path, "-g", "soak", "-n", name],
                                    env=self.env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            self.pids.add(proc.pid)
            time.sleep(self.rng.uniform(1, 12))
            killed = proc.poll() is None
            if killed:
                proc.send_signal(signal.SIGKILL)
            rc = proc.wait()
            state, message = self.last_run(name)  # a look at it fails the dead worker's run
            expected = ((killed and state == "Failed" and "killed or crashed" in message)
                        or (not killed and rc == 0 and state == "Succeeded"))
            kind_note = "killed" if killed else "finished before the kill"
            self.outcomes[kind_note] = self.outcomes.get(kind_note, 0) + 1
        seconds = now() - t0
        c = self.counts[kind]
        c["runs"] += 1
        c["seconds"] += seconds
        key = "%s -> %s" % (kind, state)
        self.outcomes[key] = self.outcomes.get(key, 0) + 1
        if expected:
            c["expected"] += 1
        else:
            self.problems.append("build %d (%s, %s): unexpected end %s: %s" %
                                 (i, kind, name, state, message[:300]))
        # No version may stay Creating once its run has ended.
        versions = json.loads(self.cli("sig", "image-version", "list", "-g", "soak", "-r", "gal",
                                       "-i", "deb", check=True).stdout)
        creating = [v["name"] for v in versions
                    if v["properties"]["provisioningState"] == "Creating"]
        if creating:
            self.problems.append("build %d (%s): versions left Creating: %s" % (i, kind, creating))
        print("%3d %-8s %-10s %6.1f s  %s" % (i, kind, state, seconds,
                                              "" if expected else "UNEXPECTED " + message[:160]),
              flush=True)

    def du(self):
        # Blocks used, not apparent size: each run's disk.raw is sparse.
        out = subprocess.run(["du", "-s", "-B1", "--exclude=catalog", self.home], capture_output=True,
                             text=True).stdout.split()
        return int(out[0]) if out else 0

    def prune(self, label):
        before = self.du()
        p = self.cli("cache", "prune", "--max-size", "256M", check=True)
        g = self.cli("store", "gc", check=True)
        after = self.du()
        self.disk_samples.append((label, before, after))
        parts = subprocess.run("du -sm --exclude=catalog %s/* | sort -rn | head -4" % self.home,
                               shell=True, capture_output=True, text=True).stdout
        print("  largest after prune (MiB): " + parts.replace(self.home + "/", "").replace(
            "\n", ", ").replace("\t", " "), flush=True)
        print("  prune at %s: %.0f MiB -> %.0f MiB (%s)" % (label, before / 2**20, after / 2**20,
                                                        p.stdout.replace("\n", " ")[:200]),
              flush=True)
        del g

    def leftovers(self):
        """What is left of this run: processes, mounts, loop devices, cgroups, qemu."""
        left = {}
        me = os.getpid()
        procs = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == me:
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if self.home in cmd or self.marker in cmd or int(pid) in self.pids:
                procs.append("%s: %s" % (pid, cmd[:200]))
        left["processes"] = procs
        left["qemu"] = [p for p in procs if "qemu" in p]
        with open("/proc/self/mountinfo") as f:
            left["mounts"] = [l.strip() for l in f if self.home in l]
        lo = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
        left["loop devices"] = [l for l in lo.splitlines() if self.home in l]
        cgroups = []
        for root, dirs, _ in os.walk("/sys/fs/cgroup"):
            for d in dirs:
                m = re.match(r"imagesmith-sandbox-(\d+)-\d+$", d)
                if m and int(m.group(1)) in self.pids:
                    cgroups.append(os.path.join(root, d))
        left["cgroups"] = cgroups
        return left

    def run(self, builds):
        self.setup()
        # A fixed mix, shuffled: about 2/3 plain builds, the rest interrupted
        # or failing in validation (each of those boots a VM).
        n_val = max(1, builds // 12)
        n_kill = max(1, builds * 15 // 100)
        n_cancel = max(1, builds * 15 // 100)
        plan = (["valfail"] * n_val + ["kill"] * n_kill + ["cancel"] * n_cancel)
        plan += ["ok"] * (builds - len(plan))
        self.rng.shuffle(plan)
        t0 = now()
        self.done = 0
        for i, kind in enumerate(plan, 1):
            if self.stop_file and os.path.exists(self.stop_file):
                print("stopping early: %s exists" % self.stop_file, flush=True)
                self.problems.append("stopped early after %d of %d builds" % (i - 1, builds))
                break
            self.one(i, kind)
            self.done = i
            if i % 10 == 0:
                self.prune("build %d" % i)
        # A killed build cannot remove its sandbox's cgroup; the next sandbox
        # run removes those of dead processes (sandbox/cgroup.cc SweepStale).
        # So one more plain build (not counted) before looking.
        name, path = self.template(0, "ok")
        final = self.cli("build", path, "-g", "soak", "-n", name)
        if final.returncode != 0:
            self.problems.append("the final plain build failed: " + final.stderr[-300:])
        # Workers of --no-wait runs exit when idle; give them a moment.
        deadline = now() + 60
        while now() < deadline and self.leftovers()["processes"]:
            time.sleep(2)
        self.prune("the end")
        fsck = self.cli("store", "fsck")
        if fsck.returncode != 0:
            self.problems.append("store fsck: " + fsck.stdout[-500:] + fsck.stderr[-500:])
        left = self.leftovers()
        for what, items in left.items():
            if items:
                self.problems.append("left over %s: %s" % (what, items[:5]))
        return now() - t0, left


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--imagesmith", default=os.path.join(repo, "build", "imagesmith"))
    ap.add_argument("--builds", type=int, default=100)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--catalog", default=os.environ.get("IMAGESMITH_TEST_CACHE", ""),
                    help="a catalog directory with the Debian base already built")
    ap.add_argument("--results", default="")
    ap.add_argument("--stop-file", default="",
                    help="when this file exists, start no more builds and do the final checks")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    args = ap.parse_args()
    soak = Soak(args)
    load_before = open("/proc/loadavg").read().split()[:3]
    print("data directory %s, %d builds, seed %d" % (soak.home, args.builds, args.seed), flush=True)
    try:
        seconds, left = soak.run(args.builds)
    finally:
        if not args.keep:
            shutil.rmtree(soak.home, ignore_errors=True)
    load_after = open("/proc/loadavg").read().split()[:3]
    lines = ["%d of %d builds in %.0f s (load average before %s, after %s), seed %d" %
             (soak.done, args.builds, seconds, " ".join(load_before), " ".join(load_after), args.seed)]
    for k in KINDS:
        c = soak.counts[k]
        lines.append("  %-8s %3d runs, %3d ended as expected, mean %.1f s" %
                     (k, c["runs"], c["expected"], c["seconds"] / max(1, c["runs"])))
    lines.append("  outcomes: " + ", ".join("%s %d" % kv for kv in sorted(soak.outcomes.items())))
    for label, before, after in soak.disk_samples:
        lines.append("  disk use (data directory without the catalog) at %s: %.0f MiB, after "
                     "cache prune + store gc %.0f MiB" % (label, before / 2**20, after / 2**20))
    lines.append("  left over: " + ", ".join("%s %d" % (k, len(v)) for k, v in left.items()))
    lines.append("  problems: %d" % len(soak.problems))
    lines += ["    " + p for p in soak.problems]
    text = "\n".join(lines)
    print(text)
    if args.results:
        with open(args.results, "w") as f:
            f.write(text + "\n")
    return 0 if not soak.problems else 1


if __name__ == "__main__":
    sys.exit(main())
