// End-to-end tests of in-VM validation: real builds, real qemu boots (TCG
// here), the real guest agent. The tests share one data directory so that
// the customize steps are built once and every later build hits the cache;
// each build still makes its own disk and boots its own validation VM.
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "base/json.h"
#include "base/sha256.h"
#include "base/strings.h"
#include "builder/run_log.h"
#include "builder/validate.h"
#include "e2e_util.h"
#include "template/parser.h"

namespace imagesmith::e2e {
namespace {

// qemu processes running a validation VM of `dir` (the run or data dir).
int QemuProcessesUnder(const std::string& dir) {
  return static_cast<int>(PidsWhere([&](const std::string& cmd) {
                            return cmd.rfind("qemu-system-x86_64", 0) == 0 &&
                                   cmd.find(dir) != std::string::npos;
                          }).size());
}

std::string Sha256OfFile(const std::string& path) {
  ProcessOptions o;
  o.argv = {"sha256sum", path};
  auto r = Env::Default()->RunProcess(o);
  return r.ok() && r->success() ? r->stdout_data.substr(0, 64) : "";
}

class ValidateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    home_ = new std::string();
    env_ = new std::map<std::string, std::string>(DataDirWithSharedCatalog(home_));
  }

  // A Debian 12 template with one cached customizer and these validators.
  std::string Template(const std::string& validate, const std::string& extra = "") {
    return R"({"type": "Microsoft.VirtualMachineImages/imageTemplates", "apiVersion": "2022-07-01",
  "location": "eastus", "properties": {
    "buildTimeoutInMinutes": 30,
    "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12", "sku": "12",
               "version": "latest"},
    "customize": [{"type": "Shell", "name": "motd", "inline": ["echo validated-image > /etc/motd"]}],
    "validate": )" +
           validate + R"(,
    "distribute": [{"type": "VHD", "runOutputName": "out"}])" +
           extra + "}}";
  }

  CliResult Build(const std::string& text, const std::map<std::string, std::string>& more = {}) {
    dir_ = MakeTempDir();
    EXPECT_TRUE(Env::Default()->WriteFileAtomic(dir_ + "/t.json", text).ok());
    auto env = *env_;
    env.insert(more.begin(), more.end());
    return RunCli({"build", "t.json", "-n", "t"}, dir_, env);
  }
  // properties.A.B; a missing one fails the test (and aborts it) instead of
  // crashing on a null pointer.
  static const Json* Prop(const Json& t, const char* a, const char* b) {
    static const Json* missing = new Json(Json::String(""));
    const Json* props = t.is_object() ? t.Find("properties") : nullptr;
    const Json* p = props == nullptr ? nullptr : props->Find(a);
    const Json* v = p == nullptr ? nullptr : p->Find(b);
    EXPECT_NE(v, nullptr) << "properties." << a << "." << b << " is missing";
    return v == nullptr ? missing : v;
  }

  static std::string* home_;
  static std::map<std::string, std::string>* env_;
  std::string dir_;
};
std::string* ValidateTest::home_ = nullptr;
std::map<std::string, std::string>* ValidateTest::env_ = nullptr;

TEST_F(ValidateTest, ExampleValidationsPassInsideTheBootedImage) {
  CliResult r = RunCli({"build", "examples/debian12-nginx.json"}, SourceDir(), *env_);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto t = ParseJson(r.out);
  ASSERT_TRUE(t.ok()) << r.out;
  EXPECT_EQ(Prop(*t, "lastRunStatus", "runState")->string_value(), "Succeeded");
  std::string log = ReadOrEmpty(Prop(*t, "lastRun", "customizationLog")->string_value());
  EXPECT_NE(log.find("==== validate[0] 'nginxServesThePage' (Shell)"), std::string::npos) << log;
  EXPECT_NE(log.find("[validate[0]:out] enabled"), std::string::npos) << log;
  EXPECT_NE(log.find("validate[0] 'nginxServesThePage' (Shell) ended: exit status 0"),
            std::string::npos);
  EXPECT_NE(log.find("validate[1] 'nginxAnswersOverHttp' (Shell) ended: exit status 0"),
            std::string::npos);
  EXPECT_NE(log.find("[validate[1]:out] served: "), std::string::npos) << log;
  EXPECT_NE(log.find("agent ready"), std::string::npos);
  EXPECT_NE(log.find("[console:out]"), std::string::npos) << "the serial console is in the log";
  EXPECT_NE(log.find("validation passed"), std::string::npos);
  // The overlay was thrown away; no VM is left.
  std::string run_dir = Dirname(Prop(*t, "lastRun", "customizationLog")->string_value());
  EXPECT_FALSE(Env::Default()->FileExists(run_dir + "/validate"));
  EXPECT_EQ(QemuProcessesUnder(*home_), 0);
}

// Validation never writes to the disk it validates, even when a validator
// scribbles over the guest's whole disk device: the published disk's
// SHA-256 is the same before and after.
TEST_F(ValidateTest, PublishedDiskDigestIsUnchangedByValidation) {
  CliResult r = Build(Template(R"({"inVMValidations": [{"type": "Shell", "name": "ok",
      "inline": ["true"]}]})"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto t = ParseJson(r.out);
  ASSERT_TRUE(t.ok());
  std::string disk = Prop(*t, "lastRun", "disk")->string_value();
  std::string before = Sha256OfFile(disk);
  ASSERT_EQ(before.size(), 64u);

  std::string tpl = Template(R"({"inVMValidations": [{"type": "Shell", "name": "scribble",
      "inline": ["dd if=/dev/urandom of=/dev/vda bs=1M count=8 seek=100 conv=fsync",
                 "echo 'wrote 8 MiB of noise into /dev/vda'",
                 "echo overwritten > /etc/motd && sync"]},
      {"type": "File", "name": "dropFile", "sourceUri": "t.json", "destination": "/root/t.json"}]})");
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(dir_ + "/t.json", tpl).ok());
  tmpl::ParseResult parsed = tmpl::ParseTemplate(tpl);
  ASSERT_TRUE(parsed.ok());
  std::string run = MakeTempDir();
  auto log = build::RunLog::Open(*Env::Default(), run + "/customization.log", nullptr);
  ASSERT_TRUE(log.ok());
  build::ValidateOptions vo;
  vo.disk = disk;
  vo.template_dir = dir_;
  vo.run_dir = run;
  vo.time_left = std::chrono::minutes(10);
  ::setenv("IMAGESMITH_AGENT", (Dirname(IMAGESMITH_BINARY) + "/imagesmith-agent").c_str(), 1);
  build::ValidateResult res = build::RunValidation(*Env::Default(), *parsed.value, vo, **log);
  std::string text = ReadOrEmpty(run + "/customization.log");
  ASSERT_TRUE(res.status.ok()) << res.status.ToString() << "\n" << text;
  EXPECT_NE(text.find("wrote 8 MiB of noise into /dev/vda"), std::string::npos) << text;
  EXPECT_NE(text.find("validate[1] 'dropFile' (File) copied"), std::string::npos) << text;
  EXPECT_EQ(Sha256OfFile(disk), before);
  EXPECT_FALSE(Env::Default()->FileExists(run + "/validate"));
}

TEST_F(ValidateTest, FailingValidatorFailsTheRunNamingItAndAbortKeepsTheOverlay) {
  CliResult r = Build(Template(R"({"continueDistributeOnFailure": true, "inVMValidations": [
      {"type": "Shell", "name": "passes", "inline": ["echo first validator ok"]},
      {"type": "Shell", "name": "failsOnPurpose", "inline": ["echo about to fail", "exit 3"]}]})",
                               R"(, "errorHandling": {"onValidationError": "abort"})"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  auto t = ParseJson(r.out);
  ASSERT_TRUE(t.ok()) << r.out;
  EXPECT_EQ(Prop(*t, "lastRunStatus", "runState")->string_value(), "Failed");
  EXPECT_EQ(Prop(*t, "lastRunStatus", "runSubState")->string_value(), "Distributing");
  std::string msg = Prop(*t, "lastRunStatus", "message")->string_value();
  EXPECT_NE(msg.find("validate[1] 'failsOnPurpose' (Shell) failed: exit status 3"),
            std::string::npos)
      << msg;
  // continueDistributeOnFailure: distributed, still Failed.
  EXPECT_NE(msg.find("distributed anyway"), std::string::npos) << msg;
  CliResult runs =
      RunCli({"image-template", "show-runs", "-g", "imagesmith", "-n", "t", "--output-name", "out"},
             "", *env_);
  EXPECT_EQ(runs.exit_code, 0) << runs.err;
  EXPECT_NE(runs.out.find("\"Succeeded\""), std::string::npos) << runs.out;
  std::string log_path = Prop(*t, "lastRun", "customizationLog")->string_value();
  std::string log = ReadOrEmpty(log_path);
  EXPECT_NE(log.find("[validate[0]:out] first validator ok"), std::string::npos) << log;
  EXPECT_NE(log.find("[validate[1]:out] about to fail"), std::string::npos);
  EXPECT_NE(log.find("validate[1] 'failsOnPurpose' (Shell) ended: exit status 3"),
            std::string::npos);
  // abort: the overlay and the console are kept for inspection.
  std::string kept = Dirname(log_path) + "/validate";
  EXPECT_TRUE(Env::Default()->FileExists(kept + "/overlay.qcow2"));
  EXPECT_TRUE(Env::Default()->FileExists(kept + "/console.log"));
  EXPECT_NE(log.find("kept in " + kept), std::string::npos);
  EXPECT_EQ(QemuProcessesUnder(*home_), 0);
}

TEST_F(ValidateTest, HangingValidatorIsKilledAtItsTimeoutAndNothingIsDistributed) {
  CliResult r = Build(Template(R"({"inVMValidations": [
      {"type": "Shell", "name": "hangs", "inline": ["echo going to sleep", "sleep 600"]}]})"),
                      {{"IMAGESMITH_VALIDATOR_TIMEOUT", "15"}});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  auto t = ParseJson(r.out);
  ASSERT_TRUE(t.ok()) << r.out;
  EXPECT_EQ(Prop(*t, "lastRunStatus", "runState")->string_value(), "Failed");
  EXPECT_EQ(Prop(*t, "lastRunStatus", "runSubState")->string_value(), "Validating");
  std::string msg = Prop(*t, "lastRunStatus", "message")->string_value();
  EXPECT_NE(msg.find("validate[0] 'hangs' (Shell) failed: timed out after 15s (killed)"),
            std::string::npos)
      << msg;
  std::string log_path = Prop(*t, "lastRun", "customizationLog")->string_value();
  EXPECT_NE(ReadOrEmpty(log_path).find("[validate[0]:out] going to sleep"), std::string::npos);
  // Not distributed (continueDistributeOnFailure is false) and cleaned up.
  EXPECT_FALSE(Env::Default()->FileExists(Dirname(log_path) + "/outputs/out.vhd"));
  EXPECT_FALSE(Env::Default()->FileExists(Dirname(log_path) + "/validate"));
  EXPECT_EQ(QemuProcessesUnder(*home_), 0);
}

TEST_F(ValidateTest, CancelWhileTheValidationVmRunsKillsQemuWithinSeconds) {
  CliResult r;
  std::string text = Template(R"({"inVMValidations": [{"type": "Shell", "name": "slow",
      "inline": ["sleep 600"]}]})");
  std::thread build([&] { r = Build(text); });
  // Wait until the validation VM's qemu runs.
  bool running = false;
  for (int i = 0; i < 2400 && !running; ++i) {
    running = QemuProcessesUnder(*home_) > 0;
    if (!running) Env::Default()->SleepFor(std::chrono::milliseconds(250));
  }
  Env::Default()->SleepFor(std::chrono::seconds(5));
  int64_t asked = Env::Default()->MonotonicMicros();
  CliResult c = RunCli({"image-template", "cancel", "-g", "imagesmith", "-n", "t"}, "", *env_);
  build.join();
  double seconds = static_cast<double>(Env::Default()->MonotonicMicros() - asked) / 1e6;
  ASSERT_TRUE(running) << "the validation VM never started: " << r.err;
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_LT(seconds, 15.0);
  EXPECT_EQ(r.exit_code, 6) << r.err;
  auto t = ParseJson(r.out);
  ASSERT_TRUE(t.ok()) << r.out;
  EXPECT_EQ(Prop(*t, "lastRunStatus", "runState")->string_value(), "Canceled");
  EXPECT_EQ(QemuProcessesUnder(*home_), 0) << "a qemu outlived the canceled run";
  std::string run_dir = Dirname(Prop(*t, "lastRun", "customizationLog")->string_value());
  EXPECT_FALSE(Env::Default()->FileExists(run_dir + "/validate"));
}

// A unix socket's path must fit in 107 bytes; the data directory can be
// anywhere. With IMAGESMITH_HOME 200 characters long (the run directory
// under it is ~270), a build still boots its validation VM and the
// validators run: the agent's socket is not under the data directory.
TEST_F(ValidateTest, DataDirectoryOf200CharactersBootsValidation) {
  std::string home = MakeTempDir() + "/";
  while (home.size() < 199)
    home += std::string("long-data-directory-").substr(0, 199 - home.size());
  home += "h";
  ASSERT_EQ(home.size(), 200u);
  ASSERT_TRUE(Env::Default()->CreateDirs(home).ok());
  // The same base image as the other tests (the catalog is shared).
  char target[4096];
  ssize_t n = ::readlink((*home_ + "/catalog").c_str(), target, sizeof target - 1);
  ASSERT_GT(n, 0);
  target[n] = '\0';
  ASSERT_EQ(::symlink(target, (home + "/catalog").c_str()), 0);
  std::map<std::string, std::string> env = {{"IMAGESMITH_HOME", home}};
  dir_ = MakeTempDir();
  ASSERT_TRUE(
      Env::Default()
          ->WriteFileAtomic(dir_ + "/t.json", Template(R"({"inVMValidations": [{"type": "Shell",
      "name": "longHome", "inline": ["echo booted-with-a-long-home"]}]})"))
          .ok());
  CliResult r = RunCli({"build", "t.json", "-n", "long"}, dir_, env);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto t = ParseJson(r.out);
  ASSERT_TRUE(t.ok()) << r.out;
  EXPECT_EQ(Prop(*t, "lastRunStatus", "runState")->string_value(), "Succeeded");
  std::string log_path = Prop(*t, "lastRun", "customizationLog")->string_value();
  EXPECT_EQ(log_path.rfind(home, 0), 0u) << log_path;
  std::string log = ReadOrEmpty(log_path);
  EXPECT_NE(log.find("agent ready"), std::string::npos) << log;
  EXPECT_NE(log.find("[validate[0]:out] booted-with-a-long-home"), std::string::npos) << log;
  EXPECT_NE(log.find("validation passed"), std::string::npos) << log;
  // The socket's private directory went away with the VM.
  size_t at = log.find("socket,id=agent,path=");
  ASSERT_NE(at, std::string::npos) << log;
  std::string socket = log.substr(at + 21, log.find(',', at + 21) - at - 21);
  EXPECT_LT(socket.size(), 64u) << socket;
  EXPECT_FALSE(Env::Default()->FileExists(Dirname(socket))) << socket;
  EXPECT_EQ(QemuProcessesUnder(home), 0);
}

TEST_F(ValidateTest, PowerShellValidatorOnLinuxIsRejectedBeforeTheBuildStarts) {
  CliResult r = Build(Template(R"({"inVMValidations": [
      {"type": "PowerShell", "name": "winCheck", "inline": ["Get-Service"]}]})"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.err + r.out)
                .find("validate.inVMValidations[0] 'winCheck': PowerShell validators "
                      "run only on Windows images"),
            std::string::npos)
      << r.err << r.out;
}

TEST_F(ValidateTest, SourceValidationOnlyValidatesTheSourceWithoutCustomizing) {
  dir_ = MakeTempDir();
  std::string text = R"({"type": "Microsoft.VirtualMachineImages/imageTemplates",
  "apiVersion": "2022-07-01", "location": "eastus", "properties": {
    "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12", "sku": "12",
               "version": "latest"},
    "validate": {"sourceValidationOnly": true, "inVMValidations": [
      {"type": "Shell", "name": "isDebian12", "inline": ["grep -q 'VERSION_ID=\"12\"' /etc/os-release",
                                                        "echo source-is-debian-12"]}]},
    "distribute": [{"type": "VHD", "runOutputName": "out"}]}})";
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(dir_ + "/t.json", text).ok());
  CliResult r = RunCli({"build", "t.json", "-n", "src"}, dir_, *env_);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto t = ParseJson(r.out);
  ASSERT_TRUE(t.ok());
  std::string log = ReadOrEmpty(Prop(*t, "lastRun", "customizationLog")->string_value());
  EXPECT_NE(log.find("[validate[0]:out] source-is-debian-12"), std::string::npos) << log;
  EXPECT_EQ(log.find("==== customize"), std::string::npos);
  EXPECT_EQ(log.find("==== generalize"), std::string::npos);
  EXPECT_NE(log.find("nothing is distributed"), std::string::npos);
}

}  // namespace
}  // namespace imagesmith::e2e
