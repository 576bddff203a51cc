package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// serveGCPercent is serve's garbage collection target when GOGC is not
// set. Each decision allocates a few KiB that die young, while the live heap
// is the state and caches (Pebble's memtables and block cache are outside
// the Go heap), so Go's default of 100 collects often and frees little: at
// 400, server CPU per decision under load dropped by about a tenth
// (docs/benchmarks.md). Alone, 400 lets the heap grow to five times the
// live data, which at a million keys is gigabytes; the soft memory limit
// (defaultMemoryShare) bounds that growth, so collections stay rare while
// memory is plentiful and become frequent only near the limit.
const serveGCPercent = 400

// defaultMemoryShare is the share of the container's memory (its cgroup
// limit) or, without one, of the machine's (MemTotal) that serve's soft
// memory limit defaults to. The rest is for what Go's limit does not count
// and the container's limit does: Pebble's memtables (64 MiB each, up to
// two per database and two databases) and block cache, and the page cache
// of the log files it writes.
const defaultMemoryShare = 0.5

// unlimited is the smallest cgroup v1 memory.limit_in_bytes that means "no
// limit" (the kernel reports the largest page-aligned int64).
const unlimited = 1 << 62

// gcPlan is what tuneGC sets: the GC target and the soft memory limit, and
// where the limit came from, for the log.
type gcPlan struct {
	gcPercent int    // 0: leave the runtime's (GOGC is set)
	limit     int64  // bytes; 0: leave the runtime's (GOMEMLIMIT is set); math.MaxInt64: none
	source    string // what decided the limit
	total     int64  // the memory the share was taken of, when source says so
}

// planGC decides serve's GC settings from --memory-limit (flag, "" for the
// default), the environment and the files the kernel reports memory in.
// GOGC and GOMEMLIMIT, when set, are left to the runtime and win over the
// flag.
func planGC(flag string, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (gcPlan, error) {
	var p gcPlan
	if _, set := lookupEnv("GOGC"); !set {
		p.gcPercent = serveGCPercent
	}
	if v, set := lookupEnv("GOMEMLIMIT"); set {
		p.source = "GOMEMLIMIT=" + v
		return p, nil
	}
	if flag != "" {
		n, err := parseBytes(flag)
		if err != nil {
			return gcPlan{}, fmt.Errorf("--memory-limit: %w", err)
		}
		p.limit, p.source = n, "--memory-limit"
		return p, nil
	}
	total, source := machineMemory(readFile)
	if total <= 0 {
		p.limit, p.source = math.MaxInt64, "no memory size found"
		return p, nil
	}
	p.limit = int64(float64(total) * defaultMemoryShare)
	p.source, p.total = fmt.Sprintf("%.0f%% of %s", defaultMemoryShare*100, source), total
	return p, nil
}

// tuneGC applies planGC's settings and returns them as log attributes
// (serve logs them as "memory limit" once the store is open, so that a
// start that fails says only why).
func tuneGC(flag string, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) ([]any, error) {
	p, err := planGC(flag, lookupEnv, readFile)
	if err != nil {
		return nil, err
	}
	if p.gcPercent != 0 {
		debug.SetGCPercent(p.gcPercent)
	}
	if p.limit != 0 {
		debug.SetMemoryLimit(p.limit)
	}
	gogc := debug.SetGCPercent(-1)
	debug.SetGCPercent(gogc)
	limit := debug.SetMemoryLimit(-1)
	attrs := []any{"limit", formatBytes(limit), "limit_bytes", limit, "from", p.source, "gogc", gogc}
	if p.total > 0 {
		attrs = append(attrs, "memory", formatBytes(p.total))
	}
	return attrs, nil
}

// machineMemory returns the memory this process may use: its cgroup's
// limit (the lowest of v2 memory.max and v1 memory.limit_in_bytes, at its
// own cgroup's path and at the root of the mount) when there is one below
// the machine's MemTotal, else MemTotal; and which of them it is. It
// returns 0 when neither is readable.
func machineMemory(readFile func(string) ([]byte, error)) (int64, string) {
	total := memTotal(readFile)
	v1Path, v2Path := cgroupPaths(readFile)
	var candidates []string
	if v2Path != "" {
		candidates = append(candidates, filepath.Join("/sys/fs/cgroup", v2Path, "memory.max"))
	}
	candidates = append(candidates, "/sys/fs/cgroup/memory.max")
	if v1Path != "" {
		candidates = append(candidates, filepath.Join("/sys/fs/cgroup/memory", v1Path, "memory.limit_in_bytes"))
	}
	candidates = append(candidates, "/sys/fs/cgroup/memory/memory.limit_in_bytes")
	// Limits nest: the tightest one found counts.
	limit, from := int64(0), ""
	for _, f := range candidates {
		b, err := readFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= unlimited { // v2 says "max" for none
			continue
		}
		if limit == 0 || n < limit {
			limit, from = n, f
		}
	}
	if limit > 0 && (total == 0 || limit < total) {
		return limit, "the cgroup limit (" + from + ")"
	}
	if total > 0 {
		return total, "MemTotal"
	}
	return 0, ""
}

// cgroupPaths returns this process's cgroup v1 memory path and v2 path
// from /proc/self/cgroup ("" when absent).
func cgroupPaths(readFile func(string) ([]byte, error)) (v1, v2 string) {
	b, err := readFile("/proc/self/cgroup")
	if err != nil {
		return "", ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case containsWord(parts[1], "memory"):
			v1 = parts[2]
		}
	}
	return v1, v2
}

func containsWord(list, word string) bool {
	for w := range strings.SplitSeq(list, ",") {
		if w == word {
			return true
		}
	}
	return false
}

// memTotal returns MemTotal from /proc/meminfo in bytes, or 0.
func memTotal(readFile func(string) ([]byte, error)) int64 {
	b, err := readFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || n <= 0 || n > math.MaxInt64/1024 {
				return 0
			}
			if len(f) >= 3 && f[2] == "kB" {
				n *= 1024
			}
			return n
		}
	}
	return 0
}

// byteUnits are the suffixes parseBytes accepts: GOMEMLIMIT's (B, KiB,
// MiB, GiB, TiB) and their decimal cousins.
var byteUnits = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// parseBytes parses a size such as "1GiB", "512MiB", "2GB" or "1073741824"
// (bytes), or "off" for no limit (math.MaxInt64).
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return math.MaxInt64, nil
	}
	num, factor := s, int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, factor = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive size such as 1GiB, 512MiB or 2GB, or off", s)
	}
	if n > math.MaxInt64/factor {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * factor, nil
}

// formatBytes writes n in the largest binary unit that keeps one decimal,
// or "off" for no limit.
func formatBytes(n int64) string {
	if n == math.MaxInt64 {
		return "off"
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatInt(n, 10) + "B"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
}
