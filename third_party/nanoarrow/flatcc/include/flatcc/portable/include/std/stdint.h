#include "portable/pstdint.h"
