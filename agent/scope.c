/* scope: being written. */
#include "scope.h"
