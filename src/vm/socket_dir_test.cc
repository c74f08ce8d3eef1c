#include "vm/socket_dir.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <string>

namespace imagesmith::vm {
namespace {

TEST(SocketDirTest, MakesAShortPrivateDirectoryAndRemovesItWithTheObject) {
  std::string dir;
  {
    auto d = SocketDir::Make(*Env::Default());
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    dir = (*d)->dir();
    struct stat st {};
    ASSERT_EQ(::stat(dir.c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_LT((*d)->Path("agent.sock").size(), 64u) << (*d)->Path("agent.sock");
    ASSERT_TRUE(Env::Default()->WriteFileAtomic((*d)->Path("agent.sock"), "x").ok());
  }
  EXPECT_FALSE(Env::Default()->FileExists(dir));
}

TEST(SocketDirTest, IgnoresALongTmpdirSoThePathStaysShort) {
  const char* old = std::getenv("TMPDIR");
  std::string saved = old != nullptr ? old : "";
  std::string long_tmp = "/tmp/" + std::string(SocketDir::kMaxBaseLength, 'x');
  ::setenv("TMPDIR", long_tmp.c_str(), 1);
  auto d = SocketDir::Make(*Env::Default());
  if (old != nullptr) {
    ::setenv("TMPDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->dir().rfind("/tmp/imagesmith-", 0), 0u) << (*d)->dir();
}

}  // namespace
}  // namespace imagesmith::vm
