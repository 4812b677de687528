// Ctrl-C as a clean stop: the first SIGINT (or SIGTERM) only raises a flag that long-running work
// checks between steps, so it unwinds through destructors that remove half-written outputs; a
// second signal terminates at once, as usual.
#pragma once

#include "lib/common/errors.h"

namespace presso {

// Thrown by check_interrupted(); the CLI exits with 130 (128 + SIGINT), as shells expect.
class Interrupted : public Error {
 public:
  explicit Interrupted(const std::string& message = "interrupted; nothing was written")
      : Error(message, 130) {}
};

// Installs the handlers (idempotent). Library code never installs them; the CLI does.
void install_interrupt_handler();
bool interrupt_requested();
// Throws Interrupted when a signal has arrived.
void check_interrupted();
// Forgets an arrived signal, for a caller that has handled the stop (tests).
void clear_interrupt_request();

}  // namespace presso
