"""Accounts and logins: no usable passwords, no keys or history baked into the image, consistent
account databases, one root, and sudo without a password for the default user only."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from debian_cloud_tests.applicability import STARTS_THE_MACHINE
from debian_cloud_tests.facts import Probe
from debian_cloud_tests.probes import BTIME

#: printed before the umask lines, so what a profile prints first is skipped
UMASK_MARK = "dct-umask"
#: the files sudo reads, one a line: /etc/sudoers and what it includes (@include, @includedir and
#: their old # spellings, relative to /etc), an included directory's files without the "." or
#: trailing "~" in their names that make sudo skip them
SUDOERS_FILES = (
    "dct_sudoers() { echo /etc/sudoers; "
    "awk '$1 ~ /^[@#]includedir$/ {print \"d\", $2} $1 ~ /^[@#]include$/ {print \"f\", $2}' "
    "/etc/sudoers 2>/dev/null | while IFS=' ' read -r k p; do case $p in /*) ;; *) p=/etc/$p;; esac; "
    "if [ \"$k\" = d ]; then for f in \"$p\"/*; do case ${f##*/} in *.*|*~) ;; "
    "*) [ -f \"$f\" ] && echo \"$f\";; esac; done; else [ -f \"$p\" ] && echo \"$p\"; fi; done; }; "
    "IFS='\n'; set -- $(dct_sudoers); ")

PROBES = [
    # Only the user name and the kind of password field leave the guest, never the hash.
    Probe("shadow_kinds", "awk -F: '{ f=$2; k = (f==\"\") ? \"empty\" : (f ~ /^[!*]/ ? \"locked\" : "
          "\"usable\"); print $1, k }' /etc/shadow", root=True),
    Probe("authorized_keys", "for f in /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys "
          "/etc/ssh/authorized_keys/*; do [ -f \"$f\" ] && sed \"s|^|$f |\" \"$f\"; done; true",
          root=True),
    Probe("history_files", "for f in /root/.*history /home/*/.*history; do [ -s \"$f\" ] && "
          "echo \"$f\"; done; true", root=True),
    # private keys by content, whatever their names, in every account's .ssh
    Probe("private_keys", "grep -rlsE -- '-----BEGIN ([A-Z0-9]+ )?PRIVATE KEY-----' /root/.ssh "
          "/home/*/.ssh; true", root=True),
    Probe("core_dumps", "find /var/crash /var/lib/systemd/coredump -type f 2>/dev/null; for f in /core "
          "/core.[0-9]* /root/core /root/core.[0-9]*; do [ -f \"$f\" ] && echo \"$f\"; done; true",
          root=True),
    Probe("passwd_ids", "getent passwd | cut -d: -f1,3"),
    Probe("group_ids", "cut -d: -f1,3 /etc/group"),  # the image's own groups, not a directory's
    Probe("pwck", "pwck -r -q; echo \"pwck=$?\"; grpck -r; echo \"grpck=$?\"", root=True),
    Probe("login_defs", "grep -E '^[[:space:]]*(UMASK|ENCRYPT_METHOD)[[:space:]]' /etc/login.defs"),
    # the umask of an SSH session: what PAM (pam_umask) and sshd leave to a user's login
    Probe("session_umask", f"echo {UMASK_MARK}; umask; id -un; id -gn"),
    # after a mark: a profile script may print to stdout first
    Probe("login_shell_umask", f"bash -lc 'echo {UMASK_MARK}; umask; id -un; id -gn' </dev/null 2>/dev/null"),
    # every file in a regular account's home that is not that account's, or not its group's
    Probe("home_owners", "getent passwd | awk -F: '$3 >= 1000 && $3 < 60000 && $6 ~ \"^/home/\" "
          "{print $1, $3, $4, $6}' | while read -r name uid gid home; do [ -d \"$home\" ] && "
          "find \"$home\" -xdev \\( ! -uid \"$uid\" -o ! -gid \"$gid\" \\) "
          "-printf \"$name %u:%g %p\\n\"; done; true", root=True),
    Probe("rhosts_files", "for f in /etc/hosts.equiv /etc/shosts.equiv /root/.rhosts /root/.shosts "
          "/home/*/.rhosts /home/*/.shosts; do [ -e \"$f\" ] && echo \"$f\"; done; true", root=True),
    # mtime first: a grant written on this instance (cloud-init, a cloud's guest agent) is the
    # platform's doing; one older than the boot came with the image
    Probe("sudo_nopasswd", SUDOERS_FILES + "stat -c 'mtime %Y %n' \"$@\" 2>/dev/null; "
          "grep -sHE '^[^#]*NOPASSWD' \"$@\"; true", root=True),
    BTIME,
    # the home of every account with a login shell, and every account's and group's members, to
    # tell who else can write there
    Probe("home_dirs", "getent passwd | awk -F: 'NR == FNR { shell[$0]; next } "
          "{ print \"account\", $1, $3, $4 } ($7 in shell) { print \"login\", $1, $3, $6 }' "
          "/etc/shells - | while read -r kind name uid rest; do if [ \"$kind\" = login ]; then "
          "[ -d \"$rest\" ] && stat -c \"home $name $uid %a %u %g %n\" \"$rest\"; "
          "else echo \"$kind $name $uid $rest\"; fi; done; "
          "getent group | awk -F: '{print \"group\", $3, $4}'; true"),
    # Defaults lines, a line continued by a backslash joined to the next
    Probe("sudo_defaults", SUDOERS_FILES + "awk '{ l = c ? l \" \" $0 : $0; c = sub(/\\\\$/, \"\", l); "
          "if (!c && l ~ /^[[:space:]]*Defaults/) print l }' \"$@\"; true", root=True),
]
#: password hashing methods still considered strong (login.defs ENCRYPT_METHOD)
STRONG_HASHES = {"SHA512", "YESCRYPT", "SHA256"}



def _kinds(facts) -> dict[str, str]:
    out = facts["shadow_kinds"]
    if not out.ok:
        pytest.fail(f"cannot read /etc/shadow: {out.why()}", pytrace=False)
    return dict(line.split() for line in out.lines())


def test_root_password_locked(facts) -> None:
    """root has no password (locked or disabled): cloud images log in with keys only."""
    assert _kinds(facts).get("root") == "locked", "root has a password or an empty one; `passwd -l root`"


def test_no_empty_passwords(facts) -> None:
    """No account has an empty password field (anyone could log in where passwords are allowed)."""
    empty = [u for u, k in _kinds(facts).items() if k == "empty"]
    assert not empty, f"accounts with an empty password: {empty}; `passwd -l USER`"


def test_no_usable_passwords(facts) -> None:
    """No account has a usable password hash baked into the image."""
    usable = [u for u, k in _kinds(facts).items() if k == "usable"]
    assert not usable, f"accounts with a password set at build time: {usable}; lock them"


def test_no_authorized_keys_baked(facts, machine) -> None:
    """The only authorised keys are those given at launch (root's are disabled by cloud-init):
    the launch key may stand in any account's file, any other key is one the image brought.  On
    a host the run did not start, the launch user's own file is its owner's business."""
    launch_user, launch_key = machine.ssh.user, _public_key_blob(machine.ssh.key_file)
    started = machine.facts.provider not in STARTS_THE_MACHINE.values
    out = facts["authorized_keys"]
    assert out.ok, f"cannot read the authorized_keys files: {out.why()}"
    foreign = []
    for line in out.lines():
        path, _, entry = line.partition(" ")
        if not entry.strip() or entry.lstrip().startswith("#") or launch_key in entry.split():
            continue
        if path == f"/home/{launch_user}/.ssh/authorized_keys" and not started:
            continue
        # cloud-init's disable_root writes root's keys behind a command= that refuses the login
        if path == "/root/.ssh/authorized_keys" and "Please login as the user" in entry:
            continue
        foreign.append(f"{path}: {entry[:60]}…")
    assert not foreign, f"authorised keys not from this launch: {foreign}; remove them from the image"


def _public_key_blob(key_file: Path) -> str:
    """The base64 blob of the public half of the run's private key (as authorized_keys holds it)."""
    import paramiko

    try:  # of whatever type, as the ssh provider's check_private_key reads it
        return str(paramiko.PKey.from_path(key_file).get_base64())
    except (paramiko.SSHException, OSError, ValueError) as exc:
        pytest.fail(f"cannot read the run's key {key_file}: {exc}", pytrace=False)


def test_no_shell_history(facts) -> None:
    """No shell history from the build is left in any home directory."""
    out = facts["history_files"]
    assert out.ok, f"cannot look for shell history: {out.why()}"
    found = out.lines()
    assert not found, (f"shell history left in the image: {found}; delete it at the end of the "
                       "build (it shows how the image was made, secrets included)")


def test_no_private_keys_baked(facts) -> None:
    """No SSH private key is left in any account's .ssh: every instance would carry the build's
    key and let whoever finds it in one reach wherever that key is trusted."""
    out = facts["private_keys"]
    assert out.ok, f"cannot look for private keys: {out.why()}"
    found = out.lines()
    assert not found, f"private keys left in the image: {found}; remove them and revoke them"


def test_no_core_dumps_left(facts) -> None:
    """No core dump or crash report from the build: they hold the memory of the build's processes
    (secrets included) and waste every instance's disk."""
    out = facts["core_dumps"]
    assert out.ok, f"cannot look for core dumps: {out.why()}"
    found = out.lines()
    assert not found, f"core dumps left in the image: {found[:10]}; remove them"


def _pwck(facts) -> dict[str, tuple[int, list[str]]]:
    """pwck's and grpck's exit status with the complaints each printed before it."""
    out = facts["pwck"]
    results: dict[str, tuple[int, list[str]]] = {}
    said: list[str] = []
    for line in out.stdout.splitlines():
        m = re.fullmatch(r"(pwck|grpck)=(\d+)", line.strip())
        if m:
            results[m[1]] = (int(m[2]), said)
            said = []
        elif line.strip():
            said.append(line.strip())
    if len(results) < 2:
        pytest.fail(f"cannot run pwck/grpck: {out.why()}", pytrace=False)
    return results


def test_only_root_has_uid_0(facts) -> None:
    """root is the only account with UID 0 (another one is a hidden root login)."""
    ids = [line.split(":", 1) for line in facts["passwd_ids"].lines()]
    zero = sorted(name for name, uid in ids if uid == "0")
    assert zero == ["root"], f"accounts with UID 0: {zero}; remove all but root"


def test_no_duplicate_uids(facts) -> None:
    """No two accounts share a UID (files of one would belong to the other)."""
    counts = Counter(uid for _, uid in (line.split(":", 1) for line in facts["passwd_ids"].lines()))
    shared = sorted(uid for uid, n in counts.items() if n > 1)
    assert not shared, f"UIDs used by several accounts: {shared}; give each account its own"


def test_no_duplicate_gids(facts) -> None:
    """No two groups share a GID (a member of one is a member of the other)."""
    counts = Counter(gid for _, gid in (line.split(":", 1) for line in facts["group_ids"].lines()))
    shared = sorted(gid for gid, n in counts.items() if n > 1)
    assert counts, f"cannot read the groups: {facts['group_ids'].why()}"
    assert not shared, f"GIDs used by several groups: {shared}; give each group its own"


def test_passwd_shadow_consistent(facts) -> None:
    """/etc/passwd and /etc/shadow agree (`pwck -r` clean): no account without its shadow entry."""
    rc, said = _pwck(facts)["pwck"]
    assert rc == 0, f"pwck -r: {'; '.join(said[:5]) or f'exit {rc}'}; fix with pwck/pwconv in the image"


def test_group_gshadow_consistent(facts) -> None:
    """/etc/group and /etc/gshadow agree (`grpck -r` clean)."""
    rc, said = _pwck(facts)["grpck"]
    assert rc == 0, f"grpck -r: {'; '.join(said[:5]) or f'exit {rc}'}; fix with grpck/grpconv in the image"


def _login_defs(facts) -> dict[str, str]:
    """login.defs settings as KEY -> value (the probe keeps only KEY VALUE lines)."""
    pairs = (line.split() for line in facts["login_defs"].lines())
    return {words[0]: words[1] for words in pairs if len(words) >= 2}


def test_login_umask(facts) -> None:
    """New files are not writable by other users: login.defs UMASK, where set, is 022 or
    stricter, and a login session's umask masks group write unless the group is the user's own
    (Debian's user private groups, where pam_umask gives 002)."""
    umask = _login_defs(facts).get("UMASK")
    if umask is not None:
        assert re.fullmatch(r"0?[0-7]{3}", umask), f"login.defs UMASK {umask!r} is not a mode; set UMASK 022"
        assert int(umask, 8) & 0o022 == 0o022, (
            f"login.defs UMASK {umask} lets others write new files; use 022")
    _assert_umask_masks(facts["session_umask"].lines(), "a login session's umask")


def test_login_shell_umask(facts) -> None:
    """A login shell keeps new files from other users' writes too: nothing /etc/profile,
    /etc/profile.d or the user's own profile runs lowers the umask below 022 (002 with a user
    private group)."""
    _assert_umask_masks(facts["login_shell_umask"].lines(), "a login shell's umask (bash -l)")


def _assert_umask_masks(lines: list[str], what: str) -> None:
    """*lines* are `umask`, `id -un` and `id -gn` from one shell after its mark: the umask masks
    group write unless the group is the user's own, and always others' write."""
    if UMASK_MARK in lines:
        lines = lines[len(lines) - lines[::-1].index(UMASK_MARK):]
    session, user, group = ([*lines, "", "", ""])[:3]
    assert re.fullmatch(r"0?[0-7]{3,4}", session), (
        f"could not read {what} ({session!r}); `umask` in a shell must print it")
    private_group = user != "" and group == user
    masked = 0o002 if private_group else 0o022
    assert int(session, 8) & masked == masked, (
        f"{what} is {session} (user {user}, group {group}): new files are writable by other "
        "users; set UMASK 022 in /etc/login.defs (pam_umask) and remove the override that lowers it")


def test_password_hashing_strong(facts) -> None:
    """Passwords set later are hashed with a strong method (login.defs ENCRYPT_METHOD)."""
    method = _login_defs(facts).get("ENCRYPT_METHOD", "").upper()
    assert method in STRONG_HASHES, (f"login.defs ENCRYPT_METHOD is {method or 'unset (DES)'}; "
                                     "set ENCRYPT_METHOD SHA512 or YESCRYPT")


def test_no_rhosts_trust(facts) -> None:
    """No hosts.equiv or .rhosts grants password-less trust to other hosts."""
    out = facts["rhosts_files"]
    assert out.ok, f"cannot look for rhosts files: {out.why()}"
    found = out.lines()
    assert not found, f"host-based trust files in the image: {found}; remove them"


# grants written before this boot came with the image only on an instance this run started
@pytest.mark.applies(provider=STARTS_THE_MACHINE)
def test_no_passwordless_sudo_baked(facts) -> None:
    """Password-less sudo is granted only at first boot (cloud-init's rule for the default user, a
    cloud's guest agent), never by a rule shipped in the image."""
    out = facts["sudo_nopasswd"]
    assert out.ok, f"cannot read the sudoers files: {out.why()}"
    boot = int(facts["btime"].stdout.strip() or 0)
    mtimes = {f[2]: int(f[1]) for line in out.lines()
              if len(f := line.split(" ", 2)) == 3 and f[0] == "mtime" and f[1].isdigit()}
    baked = []
    for line in out.lines():
        # grep -H: "FILE:RULE"; the longest sudoers file name that heads the line is its file
        path = max((p for p in mtimes if line.startswith(p + ":")), key=len, default=None)
        if path is not None and mtimes[path] < boot - 5:
            baked.append(f"{path}: {line[len(path) + 1:]}")
    assert not baked, (f"password-less sudo shipped in the image: {baked[:5]}; remove it "
                       "(cloud-init grants the default user at first boot)")


#: sudo defaults whose negation gives a command the caller's environment, the caller's terminal,
#: or root without a password for whoever the entry names
SUDO_PROTECTIONS = ("env_reset", "use_pty", "authenticate")


def test_sudo_defaults_kept(facts) -> None:
    """sudo keeps its protective defaults: the environment reset, commands on a terminal of their
    own, a password asked unless a rule says NOPASSWD (no `Defaults !env_reset`, `!use_pty` or
    `!authenticate` in the image)."""
    out = facts["sudo_defaults"]
    assert out.ok, f"cannot read the sudoers files: {out.why()}"
    negated = [line.strip() for line in out.lines()
               if any(re.search(rf"(^|[\s,])!\s*{name}\b", line.split(None, 1)[-1])
                      for name in SUDO_PROTECTIONS)]
    assert not negated, f"sudo protections turned off: {negated[:5]}; remove those Defaults"


def test_home_files_owned_by_their_user(facts) -> None:
    """Everything in a regular account's home belongs to that account and its group: a dot file
    root or the build left there runs, with the user's rights, code someone else controls."""
    out = facts["home_owners"]
    assert out.ok, f"cannot search the home directories: {out.why()}"
    found = out.lines()
    assert not found, (f"files in a home that are not its user's (user owner:group path): "
                       f"{found[:10]}; chown them to the user")


def home_dir_writers(text: str) -> list[str]:
    """The homes of home_dirs's output that someone but their account (and root) can write: by
    mode for others, for the directory's group when another account is in it, or for an owner
    that is not the account."""
    accounts: list[tuple[str, str, str]] = []  # name, uid, primary gid
    members: dict[str, set[str]] = {}
    homes: list[list[str]] = []
    for line in text.splitlines():
        kind, *fields = line.split(" ", 6 if line.startswith("home ") else 3)
        if kind == "account" and len(fields) == 3:
            accounts.append((fields[0], fields[1], fields[2]))
        elif kind == "group" and fields:
            members[fields[0]] = {m for m in ",".join(fields[1:]).split(",") if m}
        elif kind == "home" and len(fields) == 6:
            homes.append(fields)
    found = []
    for name, uid, mode_octal, owner, group, path in homes:
        mode = int(mode_octal, 8)
        in_group = members.get(group, set()) | {n for n, _, gid in accounts if gid == group}
        others = sorted(n for n, u, _ in accounts if n in in_group and u not in (uid, "0"))
        why = ("every user" if mode & 0o002 else
               f"group {group} ({', '.join(others)})" if mode & 0o020 and others else
               f"its owner, UID {owner}" if mode & 0o200 and owner not in (uid, "0") else None)
        if why:
            found.append(f"{path} ({name}, mode {mode_octal}): writable by {why}")
    return found


def test_home_dirs_writable_only_by_their_user(facts) -> None:
    """No account with a login shell has a home that another account can write: whoever can
    write there can plant its .profile, .bashrc or .ssh/authorized_keys and act as that account.
    Readable homes (Debian's useradd makes 0755) are no weakness of this kind."""
    out = facts["home_dirs"]
    assert "\nhome " in "\n" + out.stdout, f"cannot read the login accounts' homes: {out.why()}"
    found = home_dir_writers(out.stdout)
    assert not found, f"home directories others can write: {'; '.join(found[:5])}; chmod go-w them"
