"""Build the autograder zip Gradescope asks for, for one assignment.

    python docker/gradescope/build_zip.py ASSIGNMENT [--late-policy late.toml] [--out FILE.zip]

The zip holds, at its root, setup.sh and run_autograder (Gradescope requires
them there), assignment.txt, the optional late.toml, and dlgrade/: the engine,
this assignment's hidden suite, released folder and solution. Upload it as the
assignment's "Zip file upload" autograder configuration.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent


def project_files(assignment: str) -> list:
    """(path in the project, path in the zip) of everything the grader needs for ``assignment``."""
    wanted = [
        PROJECT / "pyproject.toml",
        PROJECT / "constraints.txt",
        PROJECT / "README.md",
        PROJECT / "solutions" / f"{assignment}.ipynb",
        PROJECT / "autograder" / "suites" / "pytest.ini",
    ]
    trees = [PROJECT / "autograder", PROJECT / "assignments" / assignment, HERE]
    for tree in trees:
        for path in sorted(tree.rglob("*")):
            parts = path.relative_to(PROJECT).parts
            if (
                not path.is_file()
                or "__pycache__" in parts
                or path.suffix == ".pyc"
                or (parts[:2] == ("autograder", "suites") and len(parts) > 3 and parts[2] != assignment)
            ):
                continue
            wanted.append(path)
    return [(p, "dlgrade/" + p.relative_to(PROJECT).as_posix()) for p in dict.fromkeys(wanted)]


def build(assignment: str, out: Path, late_policy: Path | None = None) -> Path:
    if not (PROJECT / "autograder" / "suites" / assignment / "assignment.toml").exists():
        raise SystemExit(f"unknown assignment {assignment!r}: no autograder/suites/{assignment}/assignment.toml")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("setup.sh", "run_autograder"):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o100755 << 16  # executable once Gradescope unzips it
            archive.writestr(info, (HERE / name).read_bytes())
        archive.writestr("assignment.txt", assignment + "\n")
        if late_policy is not None:
            archive.write(late_policy, "late.toml")
        for path, name in project_files(assignment):
            archive.write(path, name)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment")
    parser.add_argument("--late-policy", type=Path, help="the course's late policy (see autograder/batch/late.py)")
    parser.add_argument("--out", type=Path, help="default: dlgrade-<assignment>-gradescope.zip")
    args = parser.parse_args(argv)
    out = build(args.assignment, args.out or Path(f"dlgrade-{args.assignment}-gradescope.zip"), args.late_policy)
    print(f"wrote {out}: upload it as the Gradescope assignment's autograder (zip file upload)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
