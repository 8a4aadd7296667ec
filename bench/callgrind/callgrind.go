//go:build callgrind

// Package callgrind marks the parts of a run that valgrind's callgrind
// counts. Instruction counts do not depend on what else the machine is
// doing, so the cost of a feature can be measured to a fraction of a
// percent on a shared, noisy machine, where timings swing by ±25%.
//
// Built only with -tags callgrind (it needs cgo and valgrind's headers,
// Debian's valgrind package); outside valgrind the marks do nothing.
package callgrind

/*
#include <stdlib.h>
#include <valgrind/callgrind.h>

static void aero2_zero(void) { CALLGRIND_ZERO_STATS; }
static void aero2_dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
*/
import "C"

import "unsafe"

// Zero sets every counter to zero: what follows is counted afresh.
func Zero() { C.aero2_zero() }

// Dump writes the counts since the last Zero or Dump to a file of their
// own, labelled (callgrind.out.<pid>.<n>, "desc: Trigger: Client Request:
// <label>"), and starts counting afresh.
func Dump(label string) {
	cs := C.CString(label)
	defer C.free(unsafe.Pointer(cs))
	C.aero2_dump(cs)
}
