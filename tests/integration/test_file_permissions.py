"""Permission warnings (gateway/file_check.c): files another local user could
change, private keys every user can read, a log directory where anyone can
swap the file, and workers left running as root. They are warnings, never
refusals: `-t` still exits 0, the gateway still starts and reloads. One line
per problem: `FILE: warning: <what> (mode 0644, owner uid 1000); <what to do>`.
"""

import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import REPO, Gateway, free_port, require_binary

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed")

JWKS = os.path.join(REPO, "tests", "unit", "fixtures", "jwt", "jwks.json")

CONFIG = """\
workers: 1
shutdown_timeout: 1s
{user}access_log: "{logs}/access.log"
listeners:
  - name: secure
    listen: "127.0.0.1:{port}"
    tls:
      certificates:
        - {{cert: site.pem, key: site.key}}
  - name: plain
    listen: "127.0.0.1:{plain}"
jwt_providers:
  - {{name: main, jwks_file: jwks.json}}
schemas:
  - {{name: order, file: schemas/order.json}}
routes:
  - match: {{prefix: /}}
    static: {{root: www}}
"""

LINE = re.compile(r"^(?P<file>/\S+|\S+\.yaml): warning: (?P<what>.+) \(mode (?P<mode>0[0-7]{3}), "
                  r"owner uid (?P<uid>\d+)\); (?P<todo>\S.*)$")


@pytest.fixture
def site(tmp_path):
    """A configuration and every file it names, all with safe permissions."""
    d = tmp_path / "site"
    (d / "www").mkdir(parents=True)
    (d / "www" / "index.html").write_text("hi\n")
    (d / "schemas").mkdir()
    (d / "schemas" / "order.json").write_text('{"type": "object"}\n')
    (d / "logs").mkdir()
    shutil.copy(JWKS, str(d / "jwks.json"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-keyout", str(d / "site.key"), "-out", str(d / "site.pem")],
                   check=True, capture_output=True, timeout=60)
    for name, mode in (("site.pem", 0o644), ("site.key", 0o640), ("jwks.json", 0o644),
                       ("schemas/order.json", 0o644)):
        os.chmod(str(d / name), mode)
    os.chmod(str(d / "logs"), 0o755)
    return d


def gateway(d, user="root"):
    """A gateway (not started) whose configuration is d/ringgate.yaml."""
    g = Gateway(str(d), "ringgate", CONFIG, user="user: %s\n" % user if user else "",
                logs=d / "logs", plain=free_port())
    os.chmod(g.config_path, 0o644)
    return g


def write_config(d, user="root"):
    return gateway(d, user).config_path


def check(path):
    p = subprocess.run([require_binary(), "-t", "-c", path], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=20)
    return p.returncode, p.stderr.decode(errors="replace")


def warnings(text):
    return [ln for ln in text.splitlines() if ": warning: " in ln]


def as_root():
    return os.geteuid() == 0


def test_safe_files_no_warnings(site):
    path = write_config(site, user="root" if as_root() else None)
    rc, err = check(path)
    assert rc == 0, err
    assert warnings(err) == [], err
    assert err.strip().endswith("configuration is valid"), err


def test_check_warns_once_per_problem(site):
    path = write_config(site, user="root" if as_root() else None)
    os.chmod(str(site / "site.pem"), 0o666)
    os.chmod(str(site / "site.key"), 0o644)
    os.chmod(str(site / "jwks.json"), 0o664)
    os.chmod(str(site / "schemas" / "order.json"), 0o646)
    os.chmod(str(site / "logs"), 0o777)
    os.chmod(path, 0o620)
    rc, err = check(path)
    assert rc == 0, err  # warnings, not errors
    lines = warnings(err)
    for ln in lines:
        assert LINE.match(ln), "not FILE: warning: WHAT (mode M, owner uid U); TODO: %r" % ln
    found = {(LINE.match(ln).group("file"), LINE.match(ln).group("mode")):
             LINE.match(ln).group("what") for ln in lines}
    uid = str(os.geteuid())
    assert found == {
        (str(site / "site.pem"), "0666"): "TLS certificate is writable by its group and every "
                                          "other user",
        (str(site / "site.key"), "0644"): "TLS private key is readable by every user",
        (str(site / "jwks.json"), "0664"): "JWKS file is writable by its group",
        (str(site / "schemas" / "order.json"), "0646"): "schema file is writable by every "
                                                        "other user",
        (str(site / "logs"), "0777"): "access log directory is writable by every user and has "
                                      "no sticky bit",
        (path, "0620"): "configuration file is writable by its group",
    }, err
    assert all(LINE.match(ln).group("uid") == uid for ln in lines), err
    assert "chmod go-w %s" % (site / "site.pem") in err
    assert "chmod o-rwx %s" % (site / "site.key") in err
    # The sticky bit makes a shared directory safe again (like /tmp).
    os.chmod(str(site / "logs"), 0o1777)
    rc, err = check(path)
    assert not [ln for ln in warnings(err) if "access log directory" in ln], err


def test_key_also_warned_when_writable(site):
    path = write_config(site, user="root" if as_root() else None)
    os.chmod(str(site / "site.key"), 0o660)
    rc, err = check(path)
    assert rc == 0, err
    assert warnings(err) == ["%s: warning: TLS private key is writable by its group (mode 0660, "
                             "owner uid %d); only root should be able to change it: chmod go-w %s"
                             % (site / "site.key", os.geteuid(), site / "site.key")], err


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_owner_other_than_root_or_the_service_user(site):
    path = write_config(site, user="root")
    os.chown(str(site / "site.pem"), 4321, -1)
    os.chown(str(site / "jwks.json"), 4321, -1)
    rc, err = check(path)
    assert rc == 0, err
    lines = warnings(err)
    assert len(lines) == 2, err
    for name in ("site.pem", "jwks.json"):
        assert any(ln.startswith(str(site / name) + ": warning: ") and
                   "is owned by neither root nor the user ringgate runs as, uid 0 "
                   "(mode 0644, owner uid 4321); its owner can change it: chown root" in ln
                   for ln in lines), err
    # The service user may own them: `user: nobody` runs as nobody's uid.
    import pwd
    nobody = pwd.getpwnam("nobody").pw_uid
    os.chown(str(site / "site.pem"), nobody, -1)
    os.chown(str(site / "jwks.json"), nobody, -1)
    path = write_config(site, user="nobody")
    rc, err = check(path)
    assert rc == 0 and warnings(err) == [], err


def test_inline_secret_in_a_world_readable_config(site):
    path = write_config(site, user="root" if as_root() else None)
    with open(path, "a") as f:
        f.write("  # and an HMAC provider\n")
    text = open(path).read().replace(
        "jwt_providers:\n",
        "jwt_providers:\n  - {name: hs, secret: cmluZ2dhdGUgZnV6eiBzZWNyZXQsIDMyIGJ5dGVzISE}\n")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    rc, err = check(path)
    assert rc == 0, err
    assert warnings(err) == ["%s: warning: configuration file holds a JWT secret and is readable "
                             "by every user (mode 0644, owner uid %d); chmod o-rwx %s, or keep "
                             "the key in a jwks_file only ringgate can read"
                             % (path, os.geteuid(), path)], err
    os.chmod(path, 0o640)
    rc, err = check(path)
    assert warnings(err) == [], err


@pytest.mark.skipif(os.geteuid() != 0, reason="only when started as root")
def test_root_without_user_is_warned_then_refused(site):
    path = write_config(site, user=None)
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:  # the fixture adds `user: root` for tests run as root
        f.write(text.replace("user: root\n", "", 1))
    rc, err = check(path)
    assert rc == 0, err
    assert warnings(err) == ["%s: warning: the workers will run as root: 'user' is not set; set "
                             "'user: ringgate' (the packages create that user), or 'user: root' "
                             "to mean it" % path], err
    proc = subprocess.run([require_binary(), "-c", path], capture_output=True, text=True,
                          timeout=20)
    assert proc.returncode == 1, proc.stderr
    assert "started as root without 'user'" in proc.stderr, proc.stderr


def wait_for(g, text, since=0, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in g.log_text(since):
            return True
        time.sleep(0.05)
    return False


def test_start_up_and_reload_log_the_warnings(site):
    g = gateway(site, user="root" if as_root() else None)
    os.chmod(str(site / "site.key"), 0o644)
    os.chmod(str(site / "site.pem"), 0o664)
    g.start()
    try:
        # The port accepts a moment before the start-up line is written.
        assert wait_for(g, "started"), g.log_text()
        log = g.log_text()
        # A key every user can read is an error line; the rest are warnings.
        assert re.search(r"\[error\] %s: warning: TLS private key is readable by every user "
                         r"\(mode 0644," % re.escape(str(site / "site.key")), log), log
        assert re.search(r"\[warn\] %s: warning: TLS certificate is writable by its group "
                         r"\(mode 0664," % re.escape(str(site / "site.pem")), log), log
        assert "started" in log
        if as_root():
            assert "running as root, as 'user: root' asks" in log, log
            assert "will run as root" not in log, log
        # Fixed, and something else broken: the reload says so, and goes on.
        os.chmod(str(site / "site.key"), 0o640)
        os.chmod(str(site / "site.pem"), 0o644)
        os.chmod(str(site / "schemas" / "order.json"), 0o666)
        mark = g.log_size()
        os.kill(g.pid, signal.SIGHUP)
        assert wait_for(g, "configuration reloaded", mark), g.log_text(mark)
        after = g.log_text(mark)
        assert "%s: warning: schema file is writable by its group and every other user (mode 0666"\
            % (site / "schemas" / "order.json") in after, after
        assert "site.key" not in after and "site.pem" not in after, after
        assert g.alive()
    finally:
        assert g.stop() == 0
