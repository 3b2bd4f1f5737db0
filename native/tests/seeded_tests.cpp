// Every test starts from the same global libtorch seed, whether ctest runs it alone in a process or
// gtest runs it after others: libtorch seeds its default generator from /dev/urandom, so a test that
// draws from it (torch::rand, uniform_) without a generator of its own would see other numbers each
// run, and a tolerance that holds for most draws would fail now and then.
#include <gtest/gtest.h>
#include <torch/torch.h>

namespace {

class SeedEachTest : public ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo&) override { torch::manual_seed(0); }
};

[[maybe_unused]] const bool registered = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new SeedEachTest);
  return true;
}();

}  // namespace
