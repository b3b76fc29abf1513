"""Run inside dlgrade:gpu by tests/docker/test_gpu_image.py (as the grader, uid 10001): what a learner,
forked from a zygote in the real sandbox, sees of /dev/nvidia* and whether it opens them read-write.
Prints one JSON line."""

import json
import os

from autograder.grading import catalogue
from autograder.grading.cells import Cell
from autograder.grading.learner import Learner, LearnerProcess
from autograder.grading.time_policy import TimePolicy
from autograder.sandbox import isolation, settings, spawn

CELL = """
import os
def seen():
    names = sorted(n for n in os.listdir("/dev") if n.startswith("nvidia"))
    opened = {}
    for n in names:
        try:
            fd = os.open("/dev/" + n, os.O_RDWR); os.write(fd, b"x"); os.close(fd); opened[n] = "rw"
        except OSError as e:
            opened[n] = e.strerror
    return {"dev": sorted(os.listdir("/dev")), "opened": opened, "uid": os.getuid()}
"""
settings.use(settings.Settings.from_environment(os.environ))  # this process's edge
spec = catalogue.load("initialization")
out = {"strategy": isolation.available_strategy(), "report": isolation.gpu_report(isolation.available_strategy())}
process = LearnerProcess(
    preamble="",
    cells=[Cell("c", CELL, ["seen"])],
    limits=spec.limits(),
    time_policy=TimePolicy(call=20, submission=60),
    spawner=spawn.ZygoteSpawner("k", spec.release_dir, spec.limits(), ["numpy"]),
)
try:
    out.update(Learner(process).seen())
finally:
    process.close()
print(json.dumps(out))
