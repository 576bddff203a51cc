package main

import (
	"fmt"
	"syscall"

	"github.com/custos-dev/custos/httpapi"
)

// maxFileReserve is how many open files serve keeps apart from client
// connections at most: Pebble's tables and WALs of the log and of the
// derived database, snapshots, the pprof listener, log files. With a low
// limit the reserve is half of it.
const maxFileReserve = 512

// minFileLimit is the lowest open-file limit serve starts under.
const minFileLimit = 64

// raiseFileLimit raises the soft limit on open files to the hard limit (Go
// does so at start on most systems; this makes sure) and returns the soft
// limit in force.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read the open-file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			lim = raised
		}
	}
	return lim.Cur, nil
}

// connectionCap returns the connection cap for --max-connections asked
// (0: automatic) under an open-file limit: asked when it leaves the store
// its reserve, else an error; automatic is httpapi.DefaultMaxConnections or
// what the limit leaves, whichever is lower.
func connectionCap(asked int, fileLimit uint64) (int, error) {
	if fileLimit < minFileLimit {
		return 0, fmt.Errorf("the open-file limit (%d) is too low to serve: raise it (ulimit -n)", fileLimit)
	}
	reserve := min(uint64(maxFileReserve), fileLimit/2)
	budget := int(min(fileLimit-reserve, 1<<30))
	if asked == 0 {
		return min(httpapi.DefaultMaxConnections, budget), nil
	}
	if asked > budget {
		return 0, fmt.Errorf("--max-connections %d leaves too few open files for the store: the limit is %d (ulimit -n) and %d are kept for the store; raise the limit or set --max-connections %d or less",
			asked, fileLimit, reserve, budget)
	}
	return asked, nil
}
