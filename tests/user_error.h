// The message of the UserError an action throws, for CHECK_THAT(..., Contains(...)).
#pragma once

#include <string>

#include "lib/common/errors.h"

namespace presso::test {

// "(no error)" when `action` returns normally; other exceptions propagate.
template <typename Action>
std::string user_error_of(Action&& action) {
  try {
    action();
  } catch (const presso::UserError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace presso::test
