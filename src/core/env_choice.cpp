#include "core/env_choice.h"

#include <cstring>
#include <string>

#include "core/error.h"

namespace awq {

int env_choice(const char* name, const char* value, std::initializer_list<EnvChoice> choices, int unset) {
  if (value == nullptr || *value == '\0') return unset;
  int index = 0;
  for (const EnvChoice& c : choices) {
    if (std::strcmp(value, c.value) == 0) return index;
    ++index;
  }
  std::string msg = name;
  msg += "='";
  msg += value;
  msg += "': expected ";
  index = 0;
  for (const EnvChoice& c : choices) {
    if (index > 0) msg += index + 1 == int(choices.size()) ? " or " : ", ";
    msg += c.value;
    msg += " (";
    msg += c.meaning;
    msg += ")";
    ++index;
  }
  msg += "; unset it for the default";
  throw Error(msg);
}

}  // namespace awq
