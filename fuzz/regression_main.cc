// Runs a libFuzzer entry point over every file in a corpus directory, so the
// corpus found by fuzzing stays a regression test under any compiler.
// Exits non-zero if the directory is missing or empty; a crash fails the test.
#include <dirent.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  DIR* dir = opendir(argv[1]);
  if (dir == nullptr) {
    std::perror(argv[1]);
    return 1;
  }
  std::vector<std::string> files;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') files.push_back(std::string(argv[1]) + "/" + e->d_name);
  }
  closedir(dir);
  if (files.empty()) {
    std::fprintf(stderr, "%s: corpus is empty\n", argv[1]);
    return 1;
  }
  for (const std::string& f : files) {
    std::FILE* in = std::fopen(f.c_str(), "rb");
    if (in == nullptr) {
      std::perror(f.c_str());
      return 1;
    }
    std::string data;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, in)) > 0) data.append(buf, n);
    std::fclose(in);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  }
  std::printf("ran %zu corpus inputs\n", files.size());
  return 0;
}
