"""config.home_dirs_writable_only_by_their_user reads who can write a home: by mode, and for its
group only when another account is in that group (Debian's private user groups hold one)."""

from __future__ import annotations

from suites.config.test_accounts import home_dir_writers

ACCOUNTS = """account root 0 0
account debian 1000 1000
account ops 1720 1720
account ci 1721 1720
home root 0 700 0 0 /root
home debian 1000 755 1000 1000 /home/debian
home ops 1720 770 1720 1720 /home/my ops
group 0
group 1000
group 1720
group 4 debian,syslog"""


def test_a_group_shared_with_another_account_can_write() -> None:
    assert home_dir_writers(ACCOUNTS) == ["/home/my ops (ops, mode 770): writable by group 1720 (ci)"]


def test_a_private_group_writing_is_the_account_alone() -> None:
    assert home_dir_writers(ACCOUNTS.replace("account ci 1721 1720\n", "")) == []


def test_a_supplementary_member_counts() -> None:
    text = ACCOUNTS.replace("770 1720 1720", "2775 1720 4")
    assert home_dir_writers(text) == ["/home/my ops (ops, mode 2775): writable by group 4 (debian)"]


def test_others_and_a_foreign_owner_can_write() -> None:
    assert home_dir_writers(ACCOUNTS.replace("700 0 0 /root", "1777 0 0 /root"))[0].endswith(
        "writable by every user")
    assert home_dir_writers(ACCOUNTS.replace("755 1000 1000", "755 1720 1000")) == [
        "/home/debian (debian, mode 755): writable by its owner, UID 1720",
        "/home/my ops (ops, mode 770): writable by group 1720 (ci)"]
