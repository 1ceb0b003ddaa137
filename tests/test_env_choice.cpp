// env_choice (core/env_choice.h): the one parser of the AWQ_* environment switches.
#include <gtest/gtest.h>

#include "core/env_choice.h"
#include "support/expect_error.h"

using namespace awq;

TEST(EnvChoice, UnsetGivesTheDefaultAndValuesTheirIndex) {
  const auto pick = [](const char* v) {
    return env_choice("AWQ_TEST", v, {{"a", "first"}, {"bb", "second"}, {"c", "third"}}, 1);
  };
  EXPECT_EQ(pick(nullptr), 1);
  EXPECT_EQ(pick(""), 1);
  EXPECT_EQ(pick("a"), 0);
  EXPECT_EQ(pick("bb"), 1);
  EXPECT_EQ(pick("c"), 2);
}

TEST(EnvChoice, AnythingElseNamesVariableValueAndChoices) {
  const auto pick = [](const char* v) {
    return env_choice("AWQ_TEST", v, {{"a", "first"}, {"bb", "second"}, {"c", "third"}}, 1);
  };
  // Prefixes, case and spaces are typos, not the default.
  for (const char* bad : {"b", "A", "bb ", "d"})
    EXPECT_AWQ_ERROR(pick(bad), {std::string("AWQ_TEST='") + bad + "'", "a (first), bb (second) or c (third)",
                                 "unset it for the default"});
}
