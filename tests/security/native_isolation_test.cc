// Attacks on the native executor's isolation, each beside a control that runs the same probe
// where it must succeed (the test process on the host, or a sandbox with the property off),
// so that no test passes by not running its probe.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string_view>
#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "executors/native/caps.h"
#include "executors/native/native_executor.h"

#include "tests/security/security_fixture.h"

namespace boxcar::executors {
namespace {

TEST_P(SecurityTest, HostProcessesAreInvisibleAndUnsignallable) {
  std::string pid = std::to_string(::getpid());
  std::string probe = "test -e /proc/" + pid + "/status && echo seen; kill -0 " + pid + " 2>/dev/null && echo signalled; "
                      "ps -e -o comm= | grep -c -x -e systemd -e line_io_tools -e native_isolatio || true";
  Ran control = on_host("test -e /proc/" + pid + "/status && echo seen; kill -0 " + pid + " && echo signalled");
  EXPECT_EQ(control.out, "seen\nsignalled\n");
  Ran attack = sandboxed(probe);
  EXPECT_EQ(attack.out, "0\n") << attack.err;
  Ran count = sandboxed("ps -e -o pid= | wc -l");
  EXPECT_LE(std::stoi(count.out), 4) << "processes visible: " << count.out;
}

TEST_P(SecurityTest, HostFilesOutsideSystemDirsAreUnreadable) {
  std::vector<fs::path> secrets = {"/root/boxcar-secret-" + std::to_string(::getpid()),
                                   "/srv/boxcar-secret-" + std::to_string(::getpid())};
  for (const auto& p : secrets) std::ofstream(p) << "TOP-SECRET\n";
  for (const auto& p : secrets) {
    Ran control = on_host("cat " + p.string());
    EXPECT_EQ(control.out, "TOP-SECRET\n");
    Ran attack = sandboxed("cat " + p.string() + "; ls / | tr '\\n' ' '");
    EXPECT_EQ(attack.out.find("TOP-SECRET"), std::string::npos);
    EXPECT_FALSE(attack.out.find("root ") != std::string::npos || attack.out.find("srv") != std::string::npos ||
                 attack.out.find("home") != std::string::npos || attack.out.find("var") != std::string::npos)
        << attack.out;
    fs::remove(p);
  }
}

TEST_P(SecurityTest, RootFilesystemIsReadOnly) {
  Ran attack = sandboxed(
      "echo x > /usr/bin/boxcar-x && echo wrote-usr; echo x >> /etc/passwd && echo wrote-passwd; "
      "touch /boxcar-x && echo wrote-root; echo ok > /tmp/t && echo wrote-tmp; echo ok > /workspace/t && echo wrote-ws");
  EXPECT_EQ(attack.out, "wrote-tmp\nwrote-ws\n") << attack.err;  // control: writable places work
  EXPECT_FALSE(fs::exists("/usr/bin/boxcar-x"));
  Ran host = on_host("test -w /etc/passwd && echo writable");
  EXPECT_EQ(host.out, "writable\n");
}

TEST_P(SecurityTest, MountUnshareAndPivotRootAreDenied) {
  const std::string probe =
      "unshare -r true 2>/dev/null && echo unshare-r; unshare -m true 2>/dev/null && echo unshare-m; "
      "mkdir -p /tmp/m; mount -t tmpfs none /tmp/m 2>/dev/null && echo mounted; "
      "pivot_root /tmp /tmp/m 2>/dev/null && echo pivoted; echo end";
  Ran control = on_host("unshare -r true && echo unshare-r; unshare -m true && echo unshare-m");
  EXPECT_EQ(control.out, "unshare-r\nunshare-m\n");
  Ran attack = sandboxed(probe);
  EXPECT_EQ(attack.out, "end\n");
}

TEST_P(SecurityTest, MknodIsDenied) {
  std::string dir = workspace_.string();
  Ran control = on_host("mknod " + dir + "/null-host c 1 3 && echo made");
  EXPECT_EQ(control.out, "made\n");
  Ran attack = sandboxed("mknod /tmp/null c 1 3 && echo made; mknod /workspace/null c 1 3 && echo made-ws; echo end");
  EXPECT_EQ(attack.out, "end\n");
}

// The workspace is an idmapped mount: what the step's root creates there is owned by root on
// the host's disk. A setuid or setgid bit set from inside would hand host users a set-id-root
// program (found in review: `chmod 4755` on a copy of id, then run from the host).
TEST_P(SecurityTest, NoSetuidOrSetgidFileCanBeMadeInTheWorkspace) {
  // Control: the same probe on the host makes both kinds.
  std::string dir = workspace_.string();
  Ran control = on_host("cp /bin/true " + dir + "/c1 && chmod 4755 " + dir + "/c1 && cp /bin/true " + dir +
                        "/c2 && chmod 2755 " + dir + "/c2 && stat -c %a " + dir + "/c1 " + dir + "/c2");
  EXPECT_EQ(control.out, "4755\n2755\n");
  const std::string probe = R"(cd /workspace
cp /bin/true s1; chmod 4755 s1 2>/dev/null; chmod u+s s1 2>/dev/null
cp /bin/true s2; chmod g+s s2 2>/dev/null
python3 - <<'PY' 2>/dev/null
import os
for name, flags, mode in [("s3", os.O_CREAT | os.O_WRONLY, 0o4755), ("s4", os.O_CREAT | os.O_WRONLY, 0o2755)]:
    try: os.close(os.open(name, flags, mode))
    except OSError: pass
try: os.mknod("s5", 0o100000 | 0o4755)
except OSError: pass
import ctypes, ctypes.util
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open("s1", os.O_RDONLY)
libc.syscall(452, -100, b"s1", 0o4755, 0)  # fchmodat2
libc.fchmod(fd, 0o6755)
PY
for f in s1 s2 s3 s4 s5; do [ -e $f ] && stat -c "$f %a" $f; done
echo end)";
  Ran attack = sandboxed(probe);
  for (const std::string f : {"s1", "s2", "s3", "s4", "s5"}) {
    struct stat st {};
    if (::stat((workspace_ / f).c_str(), &st) == 0) {
      EXPECT_EQ(st.st_mode & (S_ISUID | S_ISGID), 0u) << f << " " << attack.out;
    }
  }
  EXPECT_NE(attack.out.find("s1 755"), std::string::npos) << attack.out << attack.err;
  EXPECT_NE(attack.out.find("end"), std::string::npos) << attack.err;
}

TEST_P(SecurityTest, HostLoopbackIsUnreachable) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(s, 16), 0);
  socklen_t len = sizeof addr;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string port = std::to_string(ntohs(addr.sin_port));
  std::string probe = "echo hi > /dev/tcp/127.0.0.1/" + port + " 2>/dev/null && echo connected || echo refused";
  for (NetworkMode mode : {NetworkMode::job, NetworkMode::none}) {
    SandboxSpec sp = spec();
    sp.network = mode;
    EXPECT_EQ(sandboxed(probe, sp).out, "refused\n");
  }
  // Control: the same probe with network = "host" (allowed by a permissive executor).
  SandboxSpec host_net = spec();
  host_net.network = NetworkMode::host;
  auto sb = start(host_net, &permissive_job());
  ASSERT_TRUE(sb);
  EXPECT_EQ(in_sandbox(*sb, probe).out, "connected\n");
  ::close(s);
}

TEST_P(SecurityTest, HostnameChangeStaysInside) {
  char before[256] = {};
  ::gethostname(before, sizeof before);
  Ran attack = sandboxed("hostname boxcar-evil 2>/dev/null; hostname");
  EXPECT_EQ(attack.out, "probe\n");  // the step's own name, not the host's
  char after[256] = {};
  ::gethostname(after, sizeof after);
  EXPECT_STREQ(before, after);
  EXPECT_NE(std::string(before), "probe");
}

TEST_P(SecurityTest, CapabilitiesNoNewPrivsAndSeccomp) {
  Ran attack = sandboxed("grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status");
  uint64_t eff = 0, bnd = 0;
  int nnp = -1, seccomp = -1;
  std::istringstream in(attack.out);
  for (std::string key, value; in >> key >> value;) {
    if (key == "CapEff:") eff = std::stoull(value, nullptr, 16);
    if (key == "CapBnd:") bnd = std::stoull(value, nullptr, 16);
    if (key == "NoNewPrivs:") nnp = std::stoi(value);
    if (key == "Seccomp:") seccomp = std::stoi(value);
  }
  for (int cap : {21 /*SYS_ADMIN*/, 12 /*NET_ADMIN*/, 19 /*SYS_PTRACE*/, 16 /*SYS_MODULE*/, 27 /*MKNOD*/,
                  17 /*SYS_RAWIO*/, 2 /*DAC_READ_SEARCH*/}) {
    EXPECT_FALSE(eff & (1ull << cap)) << "cap " << cap << " effective";
    EXPECT_FALSE(bnd & (1ull << cap)) << "cap " << cap << " in bounding set";
  }
  EXPECT_EQ(nnp, 1);
  EXPECT_EQ(seccomp, 2);
  // Control: the test process itself has them all, and no filter.
  uint64_t own = std::stoull(status_field(::getpid(), "CapEff"), nullptr, 16);
  EXPECT_TRUE(own & (1ull << 21));
  EXPECT_EQ(std::stoi(status_field(::getpid(), "Seccomp")), 0);
}

TEST_P(SecurityTest, SeccompDeniesDangerousSyscalls) {
  // bpf, keyctl, add_key, perf_event_open, io_uring_setup, userfaultfd, socket(AF_VSOCK/AF_ALG).
  const std::string probe = R"(python3 -c '
import ctypes, socket
libc = ctypes.CDLL(None, use_errno=True)
for name, nr, args in [("bpf", 321, (0, 0, 0)), ("keyctl", 250, (0, 0)), ("add_key", 248, (0, 0, 0, 0, 0)),
                       ("perf_event_open", 298, (0, 0, -1, -1, 0)), ("io_uring_setup", 425, (1, 0)),
                       ("userfaultfd", 323, (0,)), ("kexec_load", 246, (0, 0, 0, 0)),
                       ("init_module", 175, (0, 0, 0)), ("setns", 308, (0, 0))]:
    rc = libc.syscall(nr, *args)
    print(name, "EPERM" if rc == -1 and ctypes.get_errno() == 1 else "other")
for fam in (40, 38):
    try:
        socket.socket(fam, socket.SOCK_STREAM if fam == 40 else socket.SOCK_SEQPACKET)
        print("socket", fam, "opened")
    except OSError as e:
        print("socket", fam, "denied")
')";
  Ran attack = sandboxed(probe);
  EXPECT_EQ(attack.out,
            "bpf EPERM\nkeyctl EPERM\nadd_key EPERM\nperf_event_open EPERM\nio_uring_setup EPERM\n"
            "userfaultfd EPERM\nkexec_load EPERM\ninit_module EPERM\nsetns EPERM\nsocket 40 denied\nsocket 38 denied\n")
      << attack.err;
  // Control: on the host the same calls fail for other reasons (bad arguments), or succeed.
  Ran control = on_host(probe);
  EXPECT_EQ(control.out.find("bpf EPERM"), std::string::npos) << control.out;
  EXPECT_EQ(control.out.find("io_uring_setup EPERM"), std::string::npos) << control.out;
  EXPECT_NE(control.out.find("socket 40 opened"), std::string::npos) << control.out;
}

TEST_P(SecurityTest, ForeignAbiIsKilled) {
  fs::copy_file("/proc/self/exe", workspace_ / "probe");
  Ran control = on_host(workspace_.string() + "/probe --probe-int80; echo rc=$?");
  // A kernel built without IA-32 emulation (or booted with ia32_emulation=0) answers int 0x80
  // with SIGSEGV everywhere: there is no foreign ABI to reach, so nothing to attack.
  if (control.out.find("rc=139\n") != std::string::npos) GTEST_SKIP() << "this kernel has no i386 syscall ABI (int 0x80 faults on the host)";
  EXPECT_EQ(control.out, "rc=0\n");
  Ran attack = sandboxed("/workspace/probe --probe-int80; echo rc=$?");
  EXPECT_EQ(attack.out, "rc=159\n") << attack.err;  // 128 + SIGSYS
}

TEST_P(SecurityTest, TmpIsPrivateWorkspaceIsShared) {
  auto a = start(spec("a"));
  auto b = start(spec("b"));
  EXPECT_EQ(in_sandbox(*a, "echo a > /tmp/mine && echo a > /workspace/shared && cat /tmp/mine").out, "a\n");
  EXPECT_EQ(in_sandbox(*b, "cat /tmp/mine 2>/dev/null || echo no-tmp; cat /workspace/shared").out, "no-tmp\na\n");
}

TEST_P(SecurityTest, AgentEnvironmentIsInvisible) {
  // Two markers: one set now (the agent's live environment), one from the environment the
  // process started with (what /proc/<pid>/environ of a copy of the agent would show).
  std::string marker = "BOXCAR_AGENT_MARKER_" + std::to_string(::getpid());
  ::setenv("BOXCAR_TEST_SECRET", marker.c_str(), 1);
  std::ifstream own("/proc/self/environ");
  std::string initial;
  std::getline(own, initial, '\0');
  ASSERT_FALSE(initial.empty());
  Ran control = on_host("env | grep -c " + marker + "; tr '\\0' '\\n' < /proc/" + std::to_string(::getpid()) +
                        "/environ | grep -c -F -x '" + initial + "'");
  EXPECT_EQ(control.out, "1\n1\n");  // the host sees both
  Ran attack = sandboxed("env; cat /proc/1/environ; for f in /proc/[0-9]*/environ; do cat $f; done; "
                         "cat /proc/1/cmdline; echo end");
  EXPECT_EQ((attack.out + attack.err).find(marker), std::string::npos);
  EXPECT_EQ((attack.out + attack.err).find(initial), std::string::npos) << initial;
  EXPECT_NE(attack.out.find("end"), std::string::npos);
  ::unsetenv("BOXCAR_TEST_SECRET");
}

TEST_P(SecurityTest, StepProcessesAreNotHostRoot) {
  std::string marker = "boxcar-uid-probe-" + std::to_string(::getpid());
  auto sb = start(spec());
  Ran r;
  bool done = false;
  launch(*sb, "id -u; exec -a " + marker + " sleep 1000", r, done);
  std::vector<pid_t> pids;
  for (int i = 0; i < 200 && pids.empty(); ++i) {
    run_for(std::chrono::milliseconds(10));
    pids = pids_with(marker);
  }
  ASSERT_EQ(pids.size(), 1u);
  std::istringstream uids(status_field(pids[0], "Uid"));
  uid_t real, effective;
  uids >> real >> effective;
  EXPECT_EQ(real, 100000u);
  EXPECT_EQ(effective, 100000u);
  EXPECT_EQ(std::stoi(status_field(::getpid(), "Uid")), 0);  // control: the agent is root
  // `id -u` wrote before the exec, but its pipe may not have been read yet: let the loop drain it.
  for (int i = 0; i < 500 && r.out.find('\n') == std::string::npos; ++i) run_for(std::chrono::milliseconds(10));
  EXPECT_EQ(r.out, "0\n");  // and inside, the step is uid 0
  sb->destroy();
}


TEST_P(SecurityTest, RootShowsOnlySystemDirectories) {
  std::string expected;
  for (const char* d : {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "opt", "proc", "sbin", "tmp", "usr",
                        "workspace"}) {
    if (std::string(d) == "dev" || std::string(d) == "proc" || std::string(d) == "tmp" ||
        std::string(d) == "workspace" || fs::exists(fs::path("/") / d) || fs::is_symlink(fs::path("/") / d)) {
      expected += std::string(d) + "\n";
    }
  }
  EXPECT_EQ(sandboxed("ls -1 / | LC_ALL=C sort").out, expected);
  // Control: the host's root has more (/root, /var, /run with the agent's state...).
  Ran host = on_host("ls -1 /");
  EXPECT_NE(host.out.find("root\n"), std::string::npos);
  EXPECT_NE(host.out.find("run\n"), std::string::npos);
}

TEST_P(SecurityTest, OtherJobsWorkspaceIsInvisible) {
  char tmpl[] = "/tmp/boxcar-security-other-XXXXXX";
  fs::path other = ::mkdtemp(tmpl);
  std::ofstream(other / "other-job-secret") << "OTHER\n";
  auto other_job = executor_->prepare(JobSpec{"other", other});
  ASSERT_TRUE(other_job.ok());
  const std::string probe = "cat /workspace/other-job-secret 2>/dev/null || echo absent; "
                            "grep -c " + other.string() + " /proc/self/mountinfo";
  // Control: the other job's own step sees its file, and its mount.
  auto theirs = start(spec(), other_job->get());
  EXPECT_EQ(in_sandbox(*theirs, probe).out, "OTHER\n1\n");
  EXPECT_EQ(sandboxed(probe).out, "absent\n0\n");
  (*other_job)->destroy();
  fs::remove_all(other);
}

TEST_P(SecurityTest, ProcIsMaskedAndReadOnly) {
  // Writing back the current value: a no-op where it is allowed (the host), refused inside.
  const std::string write_sys = "cat /proc/sys/vm/overcommit_memory > /proc/sys/vm/overcommit_memory 2>/dev/null "
                                "&& echo wrote-sys; ";
  EXPECT_EQ(on_host(write_sys).out, "wrote-sys\n");
  EXPECT_EQ(sandboxed(write_sys + "echo h > /proc/sysrq-trigger 2>/dev/null && echo wrote-sysrq; "
                                  "touch /proc/irq/x 2>/dev/null && echo wrote-irq; echo end")
                .out,
            "end\n");
  for (const char* masked : {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"}) {
    if (!fs::exists(masked)) continue;
    std::string probe = std::string("head -c 16 ") + masked + " 2>/dev/null | wc -c";
    EXPECT_EQ(on_host(probe).out, "16\n") << masked;  // control
    EXPECT_EQ(sandboxed(probe).out, "0\n") << masked;
  }
}

TEST_P(SecurityTest, NoHostDevicesOrSysfs) {
  const std::string probe = "ls /dev | tr '\\n' ' '; test -e /sys/fs && echo sysfs; "
                            "test -e /dev/vda && echo disk; test -e /dev/mem && echo mem; echo end";
  Ran control = on_host("test -e /sys/fs && echo sysfs");
  EXPECT_EQ(control.out, "sysfs\n");
  EXPECT_EQ(sandboxed(probe).out, "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero end\n");
}

TEST_P(SecurityTest, InitCannotBeKilledTracedOrRead) {
  const std::string probe = R"(kill -9 1 2>/dev/null; kill -TERM 1 2>/dev/null
cat /proc/1/environ >/dev/null 2>&1 && echo read-environ
for f in /proc/1/fd/*; do readlink $f >/dev/null 2>&1 && echo read-fd-link; head -c 1 $f >/dev/null 2>&1 && echo opened-fd; done
readlink /proc/1/exe >/dev/null 2>&1 && echo read-exe-link; head -c 1 /proc/1/exe >/dev/null 2>&1 && echo read-exe
head -c 1 /proc/1/maps >/dev/null 2>&1 && echo read-maps; head -c 1 /proc/1/mem >/dev/null 2>&1 && echo read-mem
python3 -c '
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
def attach(pid):
    rc = libc.ptrace(16, pid, 0, 0)
    return "attached" if rc == 0 else "denied"
child = os.fork()
if child == 0:
    time.sleep(5)
    os._exit(0)
print("init", attach(1))
print("own-child", attach(child))
os.kill(child, 9)
'
echo end)";
  // init is exec'd in the sandbox's user namespace, so its /proc entries belong to the step's
  // root (as a container's pid 1 does under runc): the fd numbers can be listed, but neither
  // what they point to, nor init's memory, executable or environment can be reached.
  auto sb = start(spec());
  Ran attack = in_sandbox(*sb, probe);
  // The control is the second line: the same ptrace works on a process of the step itself.
  EXPECT_EQ(attack.out, "init denied\nown-child attached\nend\n") << attack.err;
  EXPECT_EQ(in_sandbox(*sb, "echo init-alive").out, "init-alive\n");
}


// pid 1 used to be a fork of the agent: /proc/1/cmdline showed the daemon's flags, and its
// memory was a copy of the daemon's heap. It is now boxcar-init, exec'd fresh.
TEST_P(SecurityTest, InitHoldsNothingOfTheAgent) {
  // Canaries in the agent's heap and environment, made at run time (not in the binary).
  std::random_device rd;
  std::string heap = "BOXCAR-HEAP-CANARY-" + std::to_string(rd()) + std::to_string(rd());
  std::string env = "BOXCAR-ENV-CANARY-" + std::to_string(rd()) + std::to_string(rd());
  ::setenv("BOXCAR_TEST_CANARY", env.c_str(), 1);
  // Control: a copy of this process (what pid 1 was) holds both, and the scan finds them.
  pid_t copy = ::fork();
  if (copy == 0) {
    ::pause();
    ::_exit(0);
  }
  EXPECT_TRUE(memory_holds(copy, heap));
  EXPECT_TRUE(memory_holds(copy, env));
  ::kill(copy, SIGKILL);
  ::waitpid(copy, nullptr, 0);

  std::string marker = "boxcar-init-probe-" + std::to_string(::getpid());
  auto sb = start(spec());
  ASSERT_TRUE(sb);
  Ran inside = in_sandbox(*sb, "tr '\\0' ' ' < /proc/1/cmdline; echo; cat /proc/1/comm; "
                               "cat /proc/1/environ >/dev/null 2>&1 && echo read-environ; echo end");
  // Under runc, argv[0] is the path runc executes (a read-only bind of boxcar-init, see
  // executors/oci/bundle.h): OCI has no separate argv[0].
  EXPECT_EQ(inside.out, std::string(oci() ? "/.boxcar-init" : "boxcar-init") + " --caps=" + [] {
    char hex[32];
    std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(
                                               native::CapSet::step_default().mask()));
    return std::string(hex);
  }() + " \nboxcar-init\nend\n") << inside.err;
  Ran r;
  bool done = false;
  launch(*sb, "exec -a " + marker + " sleep 1000", r, done);
  std::vector<pid_t> pids;
  for (int i = 0; i < 200 && pids.empty(); ++i) {
    run_for(std::chrono::milliseconds(10));
    pids = pids_with(marker);
  }
  ASSERT_EQ(pids.size(), 1u);
  pid_t init = std::stoi(status_field(pids[0], "PPid"));
  std::ifstream comm("/proc/" + std::to_string(init) + "/comm");
  std::string name;
  std::getline(comm, name);
  ASSERT_EQ(name, "boxcar-init");
  EXPECT_FALSE(memory_holds(init, heap)) << "pid 1 holds the agent's heap";
  EXPECT_FALSE(memory_holds(init, env)) << "pid 1 holds the agent's environment";
  std::ifstream environ_file("/proc/" + std::to_string(init) + "/environ");
  std::string init_env((std::istreambuf_iterator<char>(environ_file)), {});
  // runc gives the container's process HOME when its environment has none: runc's, not the
  // agent's (the canaries above were looked for in all of it).
  EXPECT_EQ(init_env, oci() ? std::string("HOME=/root", 11) : "");
  EXPECT_EQ(status_field(init, "NoNewPrivs"), "\t1");
  sb->destroy();
  ::unsetenv("BOXCAR_TEST_CANARY");
}

TEST_P(SecurityTest, SeccompDeniesNumaPageMovesMemfdSecretAndAuditSockets) {
  const std::string probe = R"(python3 -c '
import ctypes, errno, socket
libc = ctypes.CDLL(None, use_errno=True)
def call(name, nr, *args):
    rc = libc.syscall(nr, *args)
    print(name, "ok" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), "?"))
call("move_pages", 279, 0, 0, 0, 0, 0, 0)
call("migrate_pages", 256, 0, 0, 0, 0)
call("set_mempolicy", 238, 0, 0, 0)
call("get_mempolicy", 239, 0, 0, 0, 0, 0)
call("mbind", 237, 0, 0, 0, 0, 0, 0)
call("memfd_secret", 447, 0)
for name, proto in (("audit", 9), ("route", 0)):
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto).close()
        print("netlink", name, "ok")
    except OSError as e:
        print("netlink", name, errno.errorcode.get(e.errno, "?"))
')";
  Ran attack = sandboxed(probe);
  EXPECT_EQ(attack.out,
            "move_pages EPERM\nmigrate_pages EPERM\nset_mempolicy EPERM\nget_mempolicy EPERM\nmbind EPERM\n"
            "memfd_secret EPERM\nnetlink audit EPROTONOSUPPORT\nnetlink route ok\n")
      << attack.err;
  // Control: on the host the same calls reach the kernel (a no-op succeeds, or the kernel
  // itself refuses for its own reasons, never the filter's EPERM for these arguments).
  Ran control = on_host(probe);
  for (const char* call : {"move_pages ok", "set_mempolicy ok", "get_mempolicy ok", "mbind ok", "netlink route ok"}) {
    EXPECT_NE(control.out.find(call), std::string::npos) << call << "\n" << control.out;
  }
  EXPECT_EQ(control.out.find("netlink audit EPROTONOSUPPORT"), std::string::npos) << control.out;
}

}  // namespace
}  // namespace boxcar::executors

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--probe-int80") {
    // getpid through the i386 ABI: allowed on the host, killed by the sandbox's filter.
    long ret;
    asm volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory");
    return ret > 0 ? 0 : 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
