/* manifest: being written. */
#include "scope.h"
