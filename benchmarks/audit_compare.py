#!/usr/bin/env python3
"""Side by side on test images: what lynis and OpenSCAP (ssg-debian's Debian 12 profiles) find,
and what our suites report, each finding matched against docs/audit-coverage.md's table.

Usage: python3 benchmarks/audit_compare.py [--image NAME=PATH ...] [--variant NAME=DEFECT,...]
       [--profile standard --profile anssi_bp28_intermediary] [--no-oscap]

Default: the good bookworm test image. Per image, one QEMU boot: our suites first (the ssh
provider on the booted guest, reboot and uniqueness left out), then lynis (copied in from the
audit references setup.sh unpacks), then `oscap xccdf eval` (openscap-scanner and what it needs
downloaded on this host, a Debian of the image's release, and installed in the guest with dpkg:
defect variants whose apt is broken get it too).
The guest is thrown away afterwards. Needs root for image builds.

For each finding of theirs: reported by us too (a check the table names failed), stricter than
Debian's default (the table names checks, none failed, and says why the reference still flags
Debian's default), covered but passed here (the same without a reason: a miss), not applicable
(the table's reason), a gap (the table says no check yet).
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from qemu_fleet import machine_facts, qemu_fleet

from debian_cloud_tests.audit import coverage, references
from debian_cloud_tests.gate import junit
from debian_cloud_tests.paths import local_ca_certs
from debian_cloud_tests.spec import HostKeySource
from debian_cloud_tests.testimage.builder import Recipe, build_image

GUEST_DIR = "/var/tmp/audit"
XCCDF_RESULT = "{http://checklists.nist.gov/xccdf/1.2}rule-result"


def run(host, command: str, timeout: float = 1800) -> tuple[int, str]:
    """*command* as root on the guest: exit status and output."""
    client = host.backend.client
    chan = client.get_transport().open_session(timeout=60)
    chan.settimeout(timeout)
    chan.exec_command(f"sudo -n sh -c {command!r} 2>&1")
    out = chan.makefile("rb").read().decode(errors="replace")
    return chan.recv_exit_status(), out


def upload(host, files: dict[str, Path]) -> None:
    """Copy *files* (name under GUEST_DIR -> local path, file or directory) into the guest."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, path in files.items():
            tar.add(path, arcname=name)
    client = host.backend.client
    chan = client.get_transport().open_session(timeout=60)
    chan.exec_command(f"sudo -n sh -c 'rm -rf {GUEST_DIR} && mkdir -p {GUEST_DIR} && "
                      f"tar -xzf - -C {GUEST_DIR} --no-same-owner'")
    chan.sendall(buf.getvalue())
    chan.shutdown_write()
    if chan.recv_exit_status() != 0:
        raise RuntimeError("could not copy the audit tools into the guest")


def our_failures(inst, workdir: Path, image: Path) -> tuple[set[str], int]:
    """Run our suites on the booted guest through the ssh provider: failed check ids, total."""
    from debian_cloud_tests.plugin import suites_dir

    ep = inst.machine.ssh
    report = workdir / "ours.xml"
    key = inst.ready.verified_key or inst.ready.host_keys[0]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "--provider=ssh", f"--image={image.name}", f"--host={ep.user}@{ep.host}:{ep.port}",
                    f"--ssh-key={ep.key_file}", f"--host-key={key}", "--datasource=NoCloud",
                    f"--ignore={suites_dir() / 'reboot'}", f"--ignore={suites_dir() / 'uniqueness'}",
                    f"--junitxml={report}", f"--artifacts-dir={workdir / 'artifacts'}"],
                   capture_output=True, text=True, cwd=workdir)
    if not report.exists():
        raise RuntimeError(f"our suites wrote no report (exit {proc.returncode}): "
                           f"{(proc.stdout + proc.stderr)[-800:]}")
    cases = [c for r in junit.parse(report) for c in r.cases]
    return {c.check_id for c in cases if c.final.status in ("failed", "error")}, len(cases)


def lynis_findings(host, refs: Path) -> set[str]:
    """The test ids of lynis's warnings and suggestions on the guest."""
    upload(host, {"lynis": refs / "usr/share/lynis", "lynis/lynis": refs / "usr/sbin/lynis",
                  "lynis/default.prf": refs / "etc/lynis/default.prf",
                  "lynis/plugins": refs / "etc/lynis/plugins"})
    rc, out = run(host, f"cd {GUEST_DIR}/lynis && chown -R root:root . && "
                         f"sh ./lynis audit system --quick --no-colors --no-log "
                         f"--report-file {GUEST_DIR}/lynis-report.dat >{GUEST_DIR}/lynis.out 2>&1; "
                         f"grep -E '^(warning|suggestion)\\[\\]=' {GUEST_DIR}/lynis-report.dat")
    found = {line.split("=", 1)[1].split("|", 1)[0] for line in out.splitlines() if "[]=" in line}
    if not found:  # lynis always suggests something: it did not run
        _, said = run(host, f"tail -20 {GUEST_DIR}/lynis.out")
        raise RuntimeError(f"lynis reported nothing (exit {rc}): {out[-300:]} {said[-800:]}")
    return found


def openscap_debs(host, into: Path) -> None:
    """Download into *into* the packages openscap-scanner needs that the guest lacks, from this
    host's archive (the same release): the guest needs no network, and a variant whose apt is
    broken on purpose gets them too."""
    _, out = run(host, "dpkg-query -W -f '${db:Status-Abbrev} ${Package}\\n'")
    installed = {line.split()[1] for line in out.splitlines() if line.startswith("ii ")}
    with tempfile.NamedTemporaryFile() as nothing:  # apt's resolver, on a system with nothing
        plan = subprocess.run(["apt-get", "install", "-s", "-q", "--no-install-recommends",
                               "-o", f"Dir::State::status={nothing.name}", "openscap-scanner"],
                              capture_output=True, text=True, check=True).stdout
    needed = {line.split()[1] for line in plan.splitlines() if line.startswith("Inst ")}
    subprocess.run(["apt-get", "download", "-q", *sorted(needed - installed)], cwd=into,
                   check=True, capture_output=True)


def oscap_failures(host, refs: Path, profiles: list[str]) -> dict[str, set[str]]:
    """Per profile, the ids of the SSG rules `oscap xccdf eval` fails on the guest."""
    with tempfile.TemporaryDirectory() as debs:
        openscap_debs(host, Path(debs))
        upload(host, {"ssg-ds.xml": refs / references.SSG_XCCDF.replace("-xccdf.xml", "-ds.xml"),
                      "debs": Path(debs)})
    rc, out = run(host, f"dpkg -i {GUEST_DIR}/debs/*.deb >/dev/null")
    if rc != 0:
        raise RuntimeError(f"could not install openscap-scanner in the guest: {out[-300:]}")
    failed = {}
    for profile in profiles:
        results = f"{GUEST_DIR}/oscap-{profile}.xml"
        run(host, f"oscap xccdf eval --profile xccdf_org.ssgproject.content_profile_{profile} "
                  f"--results {results} {GUEST_DIR}/ssg-ds.xml >/dev/null")
        _, xml = run(host, f"cat {results}")
        root = ET.fromstring(xml[xml.index("<"):])
        failed[profile] = {r.get("idref", "").removeprefix("xccdf_org.ssgproject.content_rule_")
                           for r in root.iter(XCCDF_RESULT)
                           if (r.findtext("{http://checklists.nist.gov/xccdf/1.2}result") == "fail")}
    return failed


def classify(source: str, found: set[str], entries: dict[tuple[str, str], coverage.Entry],
             ours: set[str]) -> tuple[Counter, list[str]]:
    """Count *found* by what the table says and what our suites did; list the misses."""
    counts: Counter = Counter()
    misses, outside = [], []
    for rule in sorted(found):
        entry = entries.get((source, rule))
        if entry is None:  # lynis's tests of servers the table leaves out (references.LYNIS_CATEGORIES)
            counts["outside the table"] += 1
            outside.append(rule)
        elif entry.kind == coverage.COVERED:
            if set(entry.checks) & ours:
                counts["reported by us too"] += 1
            elif entry.text:  # the table says why: the rule is stricter than Debian's default
                counts["stricter than Debian's default (explained)"] += 1
            else:
                counts["covered but passed here"] += 1
                misses.append(f"covered but passed here: {rule} ({', '.join(entry.checks)})")
        else:
            counts[entry.kind] += 1
    if outside:
        misses.append(f"outside the table: {', '.join(outside)}")
    return counts, misses


def measure(name: str, image: Path, refs: Path, entries, profiles: list[str]) -> None:
    # host keys given to the guest: a variant without a serial console announces none there
    with qemu_fleet(image, ca_certs=local_ca_certs(), host_key_source=HostKeySource.INJECTED) as fleet, \
            tempfile.TemporaryDirectory() as tmp:
        inst = fleet.launch()
        ours, total = our_failures(inst, Path(tmp), image)
        print(f"image {name}: our suites ran {total} checks, {len(ours)} failed or errored")
        found = {"lynis": lynis_findings(inst.host, refs)}
        if profiles:
            for profile, rules in oscap_failures(inst.host, refs, profiles).items():
                found[f"ssg:{profile}"] = rules
    for what, rules in found.items():
        counts, misses = classify(what.split(":")[0], rules, entries, ours)
        print(f"  {what}: {len(rules)} findings: " +
              ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())))
        for miss in misses:
            print(f"    {miss}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=DEFECT,...")
    parser.add_argument("--profile", action="append", default=[])
    parser.add_argument("--no-oscap", action="store_true")
    args = parser.parse_args()
    refs = references.root()
    entries, problems, _ = coverage.build()
    if problems:
        print(f"the audit table disagrees with the references: {problems[0]}", file=sys.stderr)
        return 2
    by_rule = {(e.rule.source, e.rule.id): e for e in entries}
    images = [(n, Path(p)) for n, p in (i.split("=", 1) for i in args.image)]
    images += [(n, build_image(Recipe(defects=tuple(d.split(","))))) for n, d in
               (v.split("=", 1) for v in args.variant)]
    images = images or [("good", build_image(Recipe()))]
    profiles = [] if args.no_oscap else (args.profile or ["standard", "anssi_bp28_intermediary"])
    print(f"machine: {machine_facts()}; references {references.versions(refs)}")
    for name, image in images:
        measure(name, image, refs, by_rule, profiles)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
