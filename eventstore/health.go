package eventstore

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/custos-dev/custos/eventstore/lograte"
)

// Failing disks
//
// Pebble retries a failed flush at once and without end (its own TODO says
// so), logging a background error each time: on a full disk that is a core
// spinning and thousands of log lines a second. pebble.Open waits for the
// flush of the replayed WAL, so on a full disk it never returns, and
// DB.Flush and DB.Close wait for the same flush. The store therefore
// watches each of its two databases (dbWatch):
//
//   - The first background or fatal error fails that database: the log
//     fail-stops (ErrStoreFailed), the derived database fails on its own
//     (ErrDerivedFailed) while the log keeps appending.
//   - Later background errors are logged once per interval with a count,
//     and Pebble's retry is slowed down (up to a second between attempts)
//     by making the error callback wait.
//   - Open returns the first error Pebble reports while opening instead of
//     waiting for a flush that never succeeds; such an Open is left behind.
//   - Closing a failed database is bounded (closeTimeout); one that does
//     not finish is left open and Close says so.
//   - A Pebble fatal error in one of Pebble's own goroutines, where nothing
//     can recover it, fails the database and parks that goroutine instead
//     of crashing the process.
//   - Every folderCheckEvery the data folder and the derived folder are
//     checked: Pebble keeps writing into the files of a removed folder, so
//     a log whose folder is gone would go on acknowledging records that no
//     restart can find.

// ErrDerivedFailed means the derived-data database (see Aux) failed: its
// reads and writes are refused until the store is reopened, which rebuilds
// nothing by itself; projections rebuild from the log. The log is not
// affected.
var ErrDerivedFailed = errors.New("eventstore: derived data failed, restart to rebuild it")

const (
	// maxRetryDelay is the longest a background error callback waits,
	// which is how often a failed Pebble retries its flush.
	maxRetryDelay = time.Second
	// closeTimeout bounds closing a failed database.
	closeTimeout = 5 * time.Second
	// folderCheckEvery is how often the store checks that its folders are
	// still there.
	folderCheckEvery = time.Second
)

// dbWatch follows the health of one Pebble database: it is the database's
// Logger and BackgroundError listener. Safe for concurrent use.
type dbWatch struct {
	name   string // "log" or "derived", in log lines
	logger *slog.Logger
	limit  *lograte.Limiter

	mu      sync.Mutex
	err     error         // the first failure
	failed  chan struct{} // closed at the first failure
	onFail  func(error)   // nil while opening: Open returns the error instead
	repeats int           // background errors after the first, for the delay
}

func newWatch(name string, logger *slog.Logger, limit *lograte.Limiter) *dbWatch {
	return &dbWatch{name: name, logger: logger, limit: limit, failed: make(chan struct{})}
}

// configure makes w popts' logger and background error listener.
func (w *dbWatch) configure(popts *pebble.Options) {
	popts.Logger = pebbleLogger{w}
	popts.EventListener = &pebble.EventListener{BackgroundError: w.backgroundError}
}

// failure returns the first failure, or nil.
func (w *dbWatch) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// opened hands failures from now on to onFail, at once if one happened
// already.
func (w *dbWatch) opened(onFail func(error)) {
	w.mu.Lock()
	w.onFail = onFail
	err := w.err
	w.mu.Unlock()
	if err != nil {
		onFail(err)
	}
}

// record notes err. It reports whether err is the first failure, and how
// long the caller should wait before Pebble retries.
func (w *dbWatch) record(err error) (first bool, delay time.Duration, onFail func(error)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
		close(w.failed)
		return true, 0, w.onFail
	}
	w.repeats++
	delay = 10 * time.Millisecond << min(w.repeats-1, 10)
	return false, min(delay, maxRetryDelay), w.onFail
}

// backgroundError is Pebble's EventListener.BackgroundError: a flush or
// compaction failed, and Pebble will retry it. It fails the database on
// the first error, logs later ones once per interval, and slows Pebble's
// retries down (it runs on Pebble's flush goroutine, with the database's
// mutex held: reads do not take it, and the database is failed anyway).
func (w *dbWatch) backgroundError(err error) {
	first, delay, onFail := w.record(err)
	switch {
	case onFail == nil:
		// Opening: Open returns the first error; an abandoned Open
		// retries quietly.
	case first:
		onFail(err)
	default:
		w.limit.Log(context.Background(), w.logger, slog.LevelError, w.name+" background error",
			"pebble background error", "component", "pebble", "db", w.name, "err", err)
	}
	if delay > 0 {
		time.Sleep(delay)
	}
}

// fatal notes a Pebble fatal error.
func (w *dbWatch) fatal(err error) {
	first, _, onFail := w.record(err)
	switch {
	case onFail == nil:
	case first:
		onFail(err)
	default:
		w.limit.Log(context.Background(), w.logger, slog.LevelError, w.name+" fatal",
			"pebble fatal error", "component", "pebble", "db", w.name, "err", err)
	}
}

// pebbleLogger routes Pebble's log lines to slog, repeated errors once per
// interval.
type pebbleLogger struct{ w *dbWatch }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.w.logger.Debug(fmt.Sprintf(format, args...), "component", "pebble", "db", p.w.name)
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.w.limit.Log(context.Background(), p.w.logger, slog.LevelError, p.w.name+" "+format,
		fmt.Sprintf(format, args...), "component", "pebble", "db", p.w.name)
}

// Fatalf is called by Pebble when it cannot go on, notably when a WAL write
// or fsync fails during a commit. It fails the database. Called under
// recoverFatal (a commit, a flush the store asked for), it panics with a
// pebbleFatal, which recoverFatal turns into an error. Called on one of
// Pebble's own goroutines, where a panic would crash the process, it parks
// that goroutine for good: the database is failed, and closing it is
// bounded.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	f := pebbleFatal{fmt.Sprintf(format, args...)}
	p.w.fatal(f)
	if underRecoverFatal() {
		panic(f)
	}
	select {}
}

// pebbleFatal is the panic value of pebbleLogger.Fatalf.
type pebbleFatal struct{ msg string }

func (f pebbleFatal) Error() string { return f.msg }

// underRecoverFatal reports whether recoverFatal is on the calling
// goroutine's stack.
func underRecoverFatal() bool {
	pcs := make([]uintptr, 256)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.Function, "/eventstore.recoverFatal") {
			return true
		}
		if !more {
			return false
		}
	}
}

// recoverFatal runs fn and turns a Pebble fatal error (see pebbleLogger)
// into an ordinary error.
func recoverFatal(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(pebbleFatal)
			if !ok {
				panic(r)
			}
			err = f
		}
	}()
	return fn()
}

// openPebble opens the database in dir watched by w. It returns the first
// error Pebble reports while opening rather than wait for pebble.Open, which
// on a full disk waits for a flush retried without end; that Open is left
// running (retrying at most once a second) and closes the database if it
// ever succeeds.
func openPebble(dir string, popts *pebble.Options, w *dbWatch) (*pebble.DB, error) {
	type result struct {
		db  *pebble.DB
		err error
	}
	var (
		mu        sync.Mutex
		abandoned bool
		done      = make(chan result, 1)
	)
	go func() {
		var db *pebble.DB
		err := recoverFatal(func() (err error) {
			db, err = pebble.Open(dir, popts)
			return err
		})
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			if db != nil {
				_ = recoverFatal(db.Close)
			}
			return
		}
		done <- result{db, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-w.failed:
		mu.Lock()
		select {
		case r = <-done:
		default:
			abandoned = true
		}
		mu.Unlock()
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := w.failure(); err != nil {
		if r.db != nil {
			go func() { _ = recoverFatal(r.db.Close) }()
		}
		return nil, err
	}
	return r.db, nil
}

// closeBounded runs close and returns its result. Once failed is closed
// (the database has failed) it waits at most closeTimeout more, then gives
// up and reports that the database was left open.
func closeBounded(name string, failed <-chan struct{}, close func() error) error {
	done := make(chan error, 1)
	go func() { done <- close() }()
	select {
	case err := <-done:
		return err
	case <-failed:
	}
	select {
	case err := <-done:
		return err
	case <-time.After(closeTimeout):
		return fmt.Errorf("eventstore: %s database failed and did not close within %s; left open", name, closeTimeout)
	}
}

// folder remembers a folder and what it was when the store opened.
type folder struct {
	path string
	info os.FileInfo
}

// gone returns an error when the folder was removed or replaced. Other
// errors from the filesystem are not its business.
func (f folder) gone(s *Store) error {
	fi, err := s.opts.FS.Stat(f.path)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return fmt.Errorf("folder %s was removed", f.path)
	case err != nil:
		return nil
	case f.info != nil && os.SameFile(f.info, f.info) && !os.SameFile(f.info, fi):
		// (os.SameFile is true for a FileInfo and itself only when it
		// comes from the os package: other filesystems cannot tell.)
		return fmt.Errorf("folder %s was replaced", f.path)
	}
	return nil
}

// watchFolders fails the log or the derived database when its folder goes
// away, until stop is closed.
func (s *Store) watchFolders(stop <-chan struct{}, done chan<- struct{}, folders []folder) {
	defer close(done)
	tick := time.NewTicker(folderCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if s.Failed() == nil {
			if err := folders[0].gone(s); err != nil {
				s.fail(fmt.Errorf("data %w", err))
			}
		}
		if len(folders) > 1 && s.DerivedFailed() == nil {
			if err := folders[1].gone(s); err != nil {
				s.failDerived(fmt.Errorf("derived data %w", err))
			}
		}
	}
}

// failDerived records the first failure of the derived database; its reads
// and writes are refused from then on, the log is not affected.
func (s *Store) failDerived(err error) error {
	wrapped := fmt.Errorf("%w: %w", ErrDerivedFailed, err)
	if s.auxFailed.CompareAndSwap(nil, &wrapped) {
		close(s.auxFailedCh)
		s.opts.Logger.Error("derived database failed; audit queries answer 503 and snapshots are not saved until a restart; the log keeps working", "err", err)
		return wrapped
	}
	return *s.auxFailed.Load()
}

// DerivedFailed returns the error that failed the derived database (see
// Aux), wrapping ErrDerivedFailed, or nil.
func (s *Store) DerivedFailed() error {
	if p := s.auxFailed.Load(); p != nil {
		return *p
	}
	return nil
}
