"""The packages (packaging/package.cmake): `cpack -G DEB` in the build
directory makes a .deb that installs ringgate as a systemd service.

Checked from the package itself: its files, conffiles, control fields and
maintainer scripts, the systemd unit, and that the packaged binary runs and
accepts the packaged configuration (`ringgate -t`, with the static root
pointed at the extracted /var/www/ringgate). The rpm is checked the same way
when rpmbuild is installed.

The build directory is $RINGGATE_BUILD_DIR, else the directory of
$RINGGATE_BIN, else build/. Packages are written to a temporary directory
(cpack -B), never into the build directory. Skipped, with the reason, when
cpack or dpkg-deb is missing.
"""

import glob
import os
import re
import shutil
import stat
import subprocess

import pytest

from conftest import REPO

CPACK_TIMEOUT = 120  # seconds for one cpack run
pytestmark = pytest.mark.timeout(CPACK_TIMEOUT + 60)

CONFIG = "/etc/ringgate/ringgate.yaml"
WWW = "/var/www/ringgate"
DEB_FILES = [
    "/usr/sbin/ringgate",
    "/lib/systemd/system/ringgate.service",
    CONFIG,
    "/etc/logrotate.d/ringgate",
    WWW + "/index.html",
]


def build_dir():
    path = os.environ.get("RINGGATE_BUILD_DIR")
    if not path and os.environ.get("RINGGATE_BIN"):
        path = os.path.dirname(os.environ["RINGGATE_BIN"])
    if not path:
        path = "build"
    if not os.path.isabs(path):
        path = os.path.join(REPO, path)
    return path


def project_version():
    with open(os.path.join(REPO, "CMakeLists.txt")) as f:
        m = re.search(r"project\(\s*ringgate\s+VERSION\s+([0-9.]+)", f.read())
    assert m, "no project(ringgate VERSION ...) in CMakeLists.txt"
    return m.group(1)


def run(argv, timeout=30, **kw):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, **kw)


def make_package(generator, out_dir):
    """Runs cpack for one generator into out_dir; returns the package path."""
    if shutil.which("cpack") is None:
        pytest.skip("cpack is not installed")
    bdir = build_dir()
    config = os.path.join(bdir, "CPackConfig.cmake")
    if not os.path.exists(config):
        pytest.fail("%s not found: configure the build first (cmake -S . -B %s), or set "
                    "RINGGATE_BUILD_DIR" % (config, bdir), pytrace=False)
    try:
        proc = run(["cpack", "-G", generator, "--config", config, "-B", out_dir],
                   timeout=CPACK_TIMEOUT, cwd=bdir)
    except subprocess.TimeoutExpired:
        pytest.fail("cpack -G %s took more than %ds" % (generator, CPACK_TIMEOUT), pytrace=False)
    assert proc.returncode == 0, "cpack -G %s failed:\n%s\n%s" % (
        generator, proc.stdout[-4000:], proc.stderr[-4000:])
    ext = {"DEB": "deb", "RPM": "rpm"}[generator]
    found = glob.glob(os.path.join(out_dir, "*." + ext))
    assert len(found) == 1, "expected one .%s in %s, got %r\n%s" % (ext, out_dir, found,
                                                                   proc.stdout[-2000:])
    return found[0]


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    return make_package("DEB", str(tmp_path_factory.mktemp("deb")))


@pytest.fixture(scope="module")
def deb_tree(deb, tmp_path_factory):
    """The package's files, extracted (dpkg-deb -x)."""
    root = str(tmp_path_factory.mktemp("deb-root"))
    proc = run(["dpkg-deb", "-x", deb, root])
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture(scope="module")
def deb_control(deb, tmp_path_factory):
    """The package's control area, extracted (dpkg-deb -e)."""
    ctl = str(tmp_path_factory.mktemp("deb-control")) + "/DEBIAN"
    proc = run(["dpkg-deb", "-e", deb, ctl])
    assert proc.returncode == 0, proc.stderr
    return ctl


def deb_listing(deb):
    """{path: (mode string, owner)} from dpkg-deb -c."""
    proc = run(["dpkg-deb", "-c", deb])
    assert proc.returncode == 0, proc.stderr
    out = {}
    for line in proc.stdout.splitlines():
        fields = line.split(None, 5)
        if len(fields) < 6:
            continue
        path = fields[5].split(" -> ")[0]
        if path.startswith("./"):
            path = path[1:]
        out[path.rstrip("/") or "/"] = (fields[0], fields[1])
    return out


def test_deb_contains_the_service_files(deb):
    listing = deb_listing(deb)
    missing = [p for p in DEB_FILES if p not in listing]
    assert not missing, "missing from the .deb: %r\nit has: %r" % (missing, sorted(listing))
    mode, owner = listing["/usr/sbin/ringgate"]
    assert mode == "-rwxr-xr-x", mode
    for path in DEB_FILES:
        assert listing[path][1] == "root/root", (path, listing[path])
    for path in DEB_FILES[1:]:
        assert listing[path][0] == "-rw-r--r--", (path, listing[path])


def test_deb_conffiles(deb_control):
    with open(os.path.join(deb_control, "conffiles")) as f:
        conffiles = f.read().split()
    assert CONFIG in conffiles, conffiles
    assert "/etc/logrotate.d/ringgate" in conffiles, conffiles


def test_deb_control_fields(deb):
    proc = run(["dpkg-deb", "-f", deb, "Package", "Version", "Architecture", "Depends",
                "Maintainer"])
    assert proc.returncode == 0, proc.stderr
    fields = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert fields.get("Package") == "ringgate", fields
    assert fields.get("Version", "").split("-")[0] == project_version(), fields
    assert fields.get("Maintainer"), fields
    depends = [d.strip().split()[0] for d in fields.get("Depends", "").split(",") if d.strip()]
    for name in ("libc6", "liburing2", "libyaml-0-2", "adduser"):
        assert name in depends, "Depends lacks %s: %r" % (name, fields.get("Depends"))


def test_deb_maintainer_scripts(deb_control):
    for name in ("postinst", "prerm", "postrm"):
        path = os.path.join(deb_control, name)
        assert os.path.exists(path), "no %s in the .deb" % name
        assert os.stat(path).st_mode & stat.S_IXUSR, "%s is not executable" % name
        with open(path) as f:
            text = f.read()
        assert text.startswith("#!/bin/sh"), name
        proc = run(["sh", "-n", path])
        assert proc.returncode == 0, "%s: %s" % (name, proc.stderr)
        # systemctl start/stop/daemon-reload only where systemd runs
        # (containers and chroots have no /run/systemd/system).
        if re.search(r"systemctl (start|stop|daemon-reload|try-restart)", text):
            assert "/run/systemd/system" in text, name
    with open(os.path.join(deb_control, "postinst")) as f:
        postinst = f.read()
    assert "ringgate -t" in postinst  # checked before it is started
    assert re.search(r"adduser --system|useradd --system", postinst)


def test_packaged_binary_runs(deb_tree):
    binary = os.path.join(deb_tree, "usr/sbin/ringgate")
    proc = run([binary, "-V"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ringgate %s " % project_version()), proc.stdout


def test_packaged_configuration_is_valid(deb_tree, tmp_path):
    with open(os.path.join(deb_tree, CONFIG.lstrip("/"))) as f:
        text = f.read()
    assert "root: %s" % WWW in text, "the packaged configuration does not serve %s" % WWW
    www = os.path.join(deb_tree, WWW.lstrip("/"))
    assert os.path.isfile(os.path.join(www, "index.html"))
    checked = tmp_path / "ringgate.yaml"
    checked.write_text(text.replace("root: %s" % WWW, 'root: "%s"' % www))
    proc = run([os.path.join(deb_tree, "usr/sbin/ringgate"), "-t", "-c", str(checked)])
    assert proc.returncode == 0, "the packaged %s does not pass ringgate -t:\n%s" % (
        CONFIG, proc.stderr)


def unit_directives(text):
    """[(key, value)] of the unit's non-comment lines."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[" or "=" not in line:
            continue
        k, v = line.split("=", 1)
        out.append((k.strip(), v.strip()))
    return out


def test_systemd_unit(deb_tree, tmp_path):
    with open(os.path.join(deb_tree, "lib/systemd/system/ringgate.service")) as f:
        text = f.read()
    d = unit_directives(text)
    keys = dict(d)
    assert keys.get("ExecStart") == "/usr/sbin/ringgate -c " + CONFIG, keys
    assert ("ExecStartPre", "/usr/sbin/ringgate -t -c " + CONFIG) in d
    assert ("ExecReload", "/bin/kill -HUP $MAINPID") in d
    assert keys.get("User") == "ringgate"
    assert keys.get("LimitMEMLOCK") == "infinity"
    assert keys.get("KillSignal") == "SIGTERM"
    assert keys.get("WantedBy") == "multi-user.target"
    # io_uring must stay allowed by any system call filter.
    filters = [v for k, v in d if k == "SystemCallFilter"]
    for v in filters:
        if v.startswith("~"):
            assert "io_uring" not in v, v
    if any(not v.startswith("~") for v in filters):
        allowed = " ".join(v for v in filters if not v.startswith("~"))
        for call in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
            assert call in allowed, "SystemCallFilter drops %s" % call

    if shutil.which("systemd-analyze") is None:
        return
    # systemd-analyze verify wants the commands to exist: point them at the
    # extracted binary. Warnings (unknown keys, bad values) go to stderr.
    unit = tmp_path / "ringgate.service"
    unit.write_text(text.replace("/usr/sbin/ringgate", os.path.join(deb_tree, "usr/sbin/ringgate")))
    proc = run(["systemd-analyze", "verify", str(unit)], timeout=60)
    problems = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ringgate" in ln]
    assert proc.returncode == 0 and not problems, "systemd-analyze verify:\n%s%s" % (
        proc.stdout, proc.stderr)


def test_logrotate_reopens_with_sigusr1(deb_tree):
    with open(os.path.join(deb_tree, "etc/logrotate.d/ringgate")) as f:
        text = "\n".join(ln for ln in f.read().splitlines() if not ln.lstrip().startswith("#"))
    assert "/var/log/ringgate/" in text
    assert "postrotate" in text and "USR1" in text
    assert "copytruncate" not in text


def test_rpm(tmp_path_factory):
    if shutil.which("rpmbuild") is None or shutil.which("rpm") is None:
        pytest.skip("rpmbuild is not installed (Debian package rpm)")
    rpm = make_package("RPM", str(tmp_path_factory.mktemp("rpm")))
    proc = run(["rpm", "-qlp", rpm])
    assert proc.returncode == 0, proc.stderr
    files = set(proc.stdout.split())
    for path in ("/usr/sbin/ringgate", "/usr/lib/systemd/system/ringgate.service", CONFIG,
                 "/etc/logrotate.d/ringgate", WWW + "/index.html"):
        assert path in files, "missing from the rpm: %s\nit has: %r" % (path, sorted(files))
    # Directories of the distribution are not claimed (/lib is a symbolic link
    # on rpm distributions).
    for path in ("/lib", "/var", "/usr/sbin", "/etc/logrotate.d"):
        assert path not in files, path
    proc = run(["rpm", "-qpc", rpm])
    assert set(proc.stdout.split()) == {CONFIG, "/etc/logrotate.d/ringgate"}, proc.stdout
    proc = run(["rpm", "-qp", "--scripts", rpm])
    assert "useradd -r" in proc.stdout, proc.stdout
    for section in ("preinstall", "postinstall", "preuninstall", "postuninstall"):
        assert section + " scriptlet" in proc.stdout, section


def test_deb_installs_checks_and_purges(deb):
    """Installs the .deb on this machine for real, checks the installed
    configuration with the installed binary, then purges it again."""
    if os.geteuid() != 0:
        pytest.skip("installing a package needs root")
    if shutil.which("dpkg") is None:
        pytest.skip("dpkg is not installed")
    if run(["dpkg-query", "-W", "-f=${Status}", "ringgate"]).stdout.startswith("install ok"):
        pytest.skip("a ringgate package is already installed here; not touching it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        proc = run(["dpkg", "-i", deb], timeout=120, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        proc = run(["/usr/sbin/ringgate", "-t", "-c", CONFIG])
        assert proc.returncode == 0, proc.stderr
        assert run(["id", "ringgate"]).returncode == 0, "the package created no ringgate user"
        assert os.path.isdir("/var/log/ringgate")
    finally:
        proc = run(["dpkg", "-P", "ringgate"], timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not os.path.exists("/usr/sbin/ringgate")
    assert run(["id", "ringgate"]).returncode != 0, "purge left the ringgate user"
