#!/usr/bin/env python3
"""Write docker/seccomp-bwrap.json: Docker's default seccomp profile plus what bubblewrap needs.

    python3 docker/make_seccomp_profile.py DOCKERS_DEFAULT.json > docker/seccomp-bwrap.json

DOCKERS_DEFAULT.json is moby's profiles/seccomp/default.json (Debian ships it in
golang-github-docker-docker-dev, /usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/).
Docker's default allows these syscalls only to a container holding CAP_SYS_ADMIN; the rule
below allows them to every process, which then still needs CAP_SYS_ADMIN *in a user namespace
it owns* (the kernel checks it): bubblewrap, run by the grader's unprivileged uid, creates one
user namespace per learner sandbox and mounts, pivots and names the sandbox inside it. Nothing
outside such a namespace (the container's own mounts, hostname, other processes) becomes reachable.
"""

from __future__ import annotations

import json
import sys

BWRAP_RULE = {
    "names": [
        "clone",  # with CLONE_NEWUSER/NEWNS/NEWPID/NEWNET/NEWIPC/NEWUTS/NEWCGROUP: the sandbox's namespaces
        "unshare",  # the same, for the calling process
        "mount",  # the sandbox's read-only binds, its /proc, /dev and /tmp (inside its mount namespace)
        "umount2",  # detach the old root after pivot_root
        "pivot_root",  # make the sandbox's tmpfs the root
        "sethostname",  # --hostname sandbox (inside its uts namespace)
    ],
    "action": "SCMP_ACT_ALLOW",
    "args": [],
    "comment": "dlgrade: bubblewrap's user-namespace sandbox for learner code, without CAP_SYS_ADMIN",
    "includes": {},
    "excludes": {},
}


def bwrap_profile(default: dict) -> dict:
    """Docker's default profile with BWRAP_RULE appended (nothing removed, nothing else changed)."""
    profile = json.loads(json.dumps(default))
    profile["syscalls"].append(BWRAP_RULE)
    return profile


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as source:
        json.dump(bwrap_profile(json.load(source)), sys.stdout, indent="\t")
    sys.stdout.write("\n")
