"""Reading the serial console: host keys cloud-init announces, boot progress, and trouble.

The console is the one channel that exists before the network does; it is how the SSH host key
is verified (cloud-init prints it between BEGIN/END SSH HOST KEY KEYS markers) and how we tell
"still booting" from "stuck in firmware".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
_KEYS_BLOCK = re.compile(
    r"-----BEGIN SSH HOST KEY KEYS-----(.*?)-----END SSH HOST KEY KEYS-----", re.S)
_KEY_LINE = re.compile(r"((?:ssh|ecdsa-sha2|sk-ssh)[-\w@.]*) (AAAA[0-9A-Za-z+/=]+)")


def clean(text: str) -> str:
    """Strip terminal escape sequences (firmware and GRUB draw with them) and carriage returns."""
    return _ANSI.sub("", text)


def announced_host_keys(console: str) -> list[str]:
    """Public host keys ("type base64") from cloud-init's last keys block on the console.

    The last block counts: after a reboot the keys are printed again, and must be the same.
    """
    blocks = _KEYS_BLOCK.findall(clean(console))
    if not blocks:
        return []
    return [f"{m.group(1)} {m.group(2)}" for m in _KEY_LINE.finditer(blocks[-1])]


@dataclass(frozen=True)
class Stage:
    name: str
    pattern: re.Pattern[str]


#: Boot stages in order, each recognised by the first console line that proves it began.
STAGES: tuple[Stage, ...] = (
    Stage("firmware", re.compile(r"SeaBIOS|UEFI|EDK II|BdsDxe|iPXE|Booting from")),
    Stage("bootloader", re.compile(r"GRUB|Loading Linux|Welcome to GRUB")),
    Stage("kernel", re.compile(r"Linux version \d|\[\s*0\.0+\]|EFI stub:")),
    Stage("userspace", re.compile(r"systemd\[1\]|Welcome to .*Debian|Run /init|init: ")),
    Stage("cloud-init", re.compile(r"cloud-init\[\d+\]|Cloud-init v\.")),
    Stage("host keys", re.compile(r"-----END SSH HOST KEY KEYS-----")),
    Stage("login prompt", re.compile(r"login: ")),
)


def boot_stage(console: str) -> str:
    """The furthest boot stage the console shows ("" before the firmware prints anything)."""
    text = clean(console)
    reached = ""
    for stage in STAGES:
        if stage.pattern.search(text):
            reached = stage.name
    return reached


#: what a boot that cannot go on prints: nothing follows but a shell, a key press or a halt
DEAD_ENDS = re.compile(r"Kernel panic - not syncing[^\n]*|Gave up waiting for root[^\n]*|"
                       r"ALERT! [^\n]* does not exist[^\n]*|You are in emergency mode[^\n]*|"
                       r"Failed to boot both default and fallback entries[^\n]*")


def dead_end(console: str) -> str | None:
    """The line saying the boot on *console* (one boot's part of it) stopped for good: GRUB
    could not boot, the kernel found no root disk or panicked; None while it may go on."""
    found = DEAD_ENDS.search(clean(console))
    return found.group(0).strip() if found else None


#: what refuses an unsigned or untrusted next stage under Secure Boot, as each says it on the
#: console: EDK II's boot manager (OVMF, AAVMF) the boot loader, shim GRUB, GRUB the kernel
SECURE_BOOT_REFUSALS = (
    ("the firmware refused to start the image's boot loader", re.compile(
        r'BdsDxe: failed to load Boot[0-9A-F]{4} "[^"\n]*" from [^\n]*: Access Denied')),
    ("shim refused to start the boot loader it was given",
     re.compile(r"Verification failed: \(0x1A\) Security Violation")),
    ("GRUB refused to load the kernel", re.compile(r"error: bad shim signature")),
)


def secure_boot_refusal(console: str) -> tuple[str, str] | None:
    """Who refused to start the next stage of the boot under Secure Boot, and the console line
    saying so; None while nothing has been refused."""
    text = clean(console)
    for who, pattern in SECURE_BOOT_REFUSALS:
        found = pattern.search(text)
        if found:
            start = text.rfind("\n", 0, found.start()) + 1
            end = text.find("\n", found.end())
            return who, text[start:end if end >= 0 else None].strip()
    return None


def tail(console: str, lines: int = 8) -> str:
    """The last non-empty console lines, for error messages."""
    kept = [ln for ln in clean(console).splitlines() if ln.strip()]
    return "\n".join(f"  | {ln[:200]}" for ln in kept[-lines:]) or "  | (the console printed nothing)"
