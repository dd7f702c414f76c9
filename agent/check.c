/* check: being written. */
#include "scope.h"
