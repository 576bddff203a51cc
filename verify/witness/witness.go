package witness

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos-dev/custos/eventstore/checkpoint"
)

// MaxProofLines is the most consistency proof lines a request may carry
// (C2SP tlog-witness).
const MaxProofLines = 63

// maxBody bounds an add-checkpoint request body.
const maxBody = 64 << 10

// ContentTypeSize is the media type of a 409 answer's body.
const ContentTypeSize = "text/x.tlog.size"

// Config configures a Witness.
type Config struct {
	// StatePath is the file that holds the latest cosigned checkpoint of
	// every log. It is replaced atomically and fsynced before each answer.
	StatePath string
	// Logs are the note verifier keys of the logs the witness follows. A
	// log key named NAME signs the checkpoints of origins NAME/CHAIN.
	Logs []string
	// Cosigner signs the cosignatures.
	Cosigner *Cosigner
	// Logger receives one line per cosigned checkpoint and a loud error
	// for each inconsistent one.
	Logger *slog.Logger
}

// Witness is a C2SP tlog-witness server. Its Handler is safe for
// concurrent use: checking a request against the stored state and
// persisting the new state happen under one lock.
type Witness struct {
	cfg  Config
	logs []note.Verifier

	mu    sync.Mutex
	state state
}

// state is the witness's file: the latest cosigned checkpoint per origin.
type state struct {
	Logs map[string]logState `json:"logs"`
}

type logState struct {
	Size uint64 `json:"size"`
	Root string `json:"root"` // base64
	// Checkpoint is the note the log signed, as received (without the
	// witness's cosignature).
	Checkpoint string `json:"checkpoint"`
}

// New opens the witness's state file (none yet: no log seen) and checks
// the keys.
func New(cfg Config) (*Witness, error) {
	if cfg.Cosigner == nil || cfg.StatePath == "" || cfg.Logger == nil {
		return nil, errors.New("witness: Cosigner, StatePath and Logger are required")
	}
	if len(cfg.Logs) == 0 {
		return nil, errors.New("witness: no log keys: give the verifier key of each log to witness")
	}
	w := &Witness{cfg: cfg, state: state{Logs: map[string]logState{}}}
	for _, k := range cfg.Logs {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("witness: log key %q: %w", k, err)
		}
		w.logs = append(w.logs, v)
	}
	b, err := os.ReadFile(cfg.StatePath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("witness: read state: %w", err)
	default:
		if err := json.Unmarshal(b, &w.state); err != nil {
			return nil, fmt.Errorf("witness: state %s: %w", cfg.StatePath, err)
		}
		if w.state.Logs == nil {
			w.state.Logs = map[string]logState{}
		}
	}
	return w, nil
}

// Size returns the size of the latest checkpoint of origin the witness
// cosigned, 0 if none.
func (w *Witness) Size(origin string) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state.Logs[origin].Size
}

// Handler serves POST /add-checkpoint.
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add-checkpoint", w.addCheckpoint)
	return mux
}

// httpError is an answer other than 200.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func fail(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

func (w *Witness) addCheckpoint(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxBody))
	if err != nil {
		http.Error(rw, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	sig, err := w.add(body)
	var he *httpError
	var conflict *ConflictError
	switch {
	case errors.As(err, &conflict):
		rw.Header().Set("Content-Type", ContentTypeSize)
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", conflict.Size)
	case errors.As(err, &he):
		http.Error(rw, he.msg, he.code)
	case err != nil:
		w.cfg.Logger.Error("witness: add-checkpoint failed", "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
	default:
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = rw.Write(sig)
	}
}

// request is a parsed add-checkpoint body.
type request struct {
	old   uint64
	proof tlog.TreeProof
	note  []byte
}

func parseRequest(body []byte) (request, error) {
	var req request
	rd := bufio.NewReader(bytes.NewReader(body))
	line, err := rd.ReadString('\n')
	if err != nil {
		return req, fail(http.StatusBadRequest, "want an old size line")
	}
	size, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "old ")
	if req.old, err = strconv.ParseUint(size, 10, 64); !ok || err != nil || strconv.FormatUint(req.old, 10) != size {
		return req, fail(http.StatusBadRequest, "malformed old size line %q", strings.TrimSuffix(line, "\n"))
	}
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return req, fail(http.StatusBadRequest, "want consistency proof lines ended by an empty line")
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			break
		}
		if len(req.proof) == MaxProofLines {
			return req, fail(http.StatusBadRequest, "more than %d consistency proof lines", MaxProofLines)
		}
		h, err := base64.StdEncoding.Strict().DecodeString(line)
		if err != nil || len(h) != tlog.HashSize {
			return req, fail(http.StatusBadRequest, "malformed consistency proof line %q", line)
		}
		req.proof = append(req.proof, tlog.Hash(h))
	}
	req.note, _ = io.ReadAll(rd)
	return req, nil
}

// verifierFor returns the log key that signs origin.
func (w *Witness) verifierFor(origin string) note.Verifier {
	for _, v := range w.logs {
		if chain, ok := strings.CutPrefix(origin, v.Name()+"/"); ok && chain != "" && !strings.Contains(chain, "/") {
			return v
		}
	}
	return nil
}

// add checks a request against the stored state, persists the new
// checkpoint and returns its cosignature line.
func (w *Witness) add(body []byte) ([]byte, error) {
	req, err := parseRequest(body)
	if err != nil {
		return nil, err
	}
	unverified, err := checkpoint.Parse(checkpoint.Text(req.note))
	if err != nil {
		return nil, fail(http.StatusBadRequest, "not a checkpoint: %v", err)
	}
	v := w.verifierFor(unverified.Origin)
	if v == nil {
		return nil, fail(http.StatusNotFound, "unknown log origin %q", unverified.Origin)
	}
	n, err := note.Open(req.note, note.VerifierList(v))
	if err != nil {
		return nil, fail(http.StatusForbidden, "checkpoint not signed by the key of %s: %v", unverified.Origin, err)
	}
	cp, err := checkpoint.Parse(n.Text)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "not a checkpoint: %v", err)
	}
	if req.old > cp.Size {
		return nil, fail(http.StatusBadRequest, "old size %d is above the checkpoint size %d", req.old, cp.Size)
	}
	if req.old == 0 && len(req.proof) > 0 {
		return nil, fail(http.StatusBadRequest, "a consistency proof from size 0 must be empty")
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	prev, seen := w.state.Logs[cp.Origin]
	if req.old != prev.Size {
		return nil, &ConflictError{Size: prev.Size}
	}
	newRoot := base64.StdEncoding.EncodeToString(cp.Root[:])
	switch {
	case seen && req.old == cp.Size:
		if newRoot != prev.Root {
			w.inconsistent(cp, prev, "same size, another root (a fork)")
			return nil, &ConflictError{Size: prev.Size, Fork: true}
		}
	case req.old > 0:
		oldRoot, err := base64.StdEncoding.DecodeString(prev.Root)
		if err != nil || len(oldRoot) != tlog.HashSize {
			return nil, fmt.Errorf("witness: stored root of %s is corrupt", cp.Origin)
		}
		if err := tlog.CheckTree(req.proof, int64(cp.Size), tlog.Hash(cp.Root), int64(req.old), tlog.Hash(oldRoot)); err != nil {
			w.inconsistent(cp, prev, "the consistency proof does not verify: "+err.Error())
			return nil, fail(http.StatusUnprocessableEntity, "the consistency proof from %d to %d does not verify against the checkpoint this witness cosigned", req.old, cp.Size)
		}
	}
	if !seen || cp.Size != prev.Size {
		next := w.state
		next.Logs = make(map[string]logState, len(w.state.Logs)+1)
		for k, s := range w.state.Logs {
			next.Logs[k] = s
		}
		next.Logs[cp.Origin] = logState{Size: cp.Size, Root: newRoot, Checkpoint: string(req.note)}
		if err := writeFileSync(w.cfg.StatePath, next); err != nil {
			return nil, err
		}
		w.state = next
		w.cfg.Logger.Info("witness: cosigned", "origin", cp.Origin, "size", cp.Size, "old_size", req.old, "root", newRoot)
	}
	return w.cfg.Cosigner.Cosign(n.Text)
}

// inconsistent logs a refused checkpoint loudly, with both roots, as the
// evidence of a log that forked or was rewritten.
func (w *Witness) inconsistent(cp checkpoint.Checkpoint, prev logState, why string) {
	w.cfg.Logger.Error("WITNESS REFUSED AN INCONSISTENT CHECKPOINT: the log contradicts a checkpoint this witness cosigned (rewritten, truncated or forked)",
		"origin", cp.Origin, "why", why,
		"cosigned_size", prev.Size, "cosigned_root", prev.Root,
		"offered_size", cp.Size, "offered_root", base64.StdEncoding.EncodeToString(cp.Root[:]))
}

// ConflictError is a 409 answer: the old size is not the size the witness
// holds (Size), or the checkpoint has that size and another root (Fork).
type ConflictError struct {
	Size uint64
	Fork bool
}

func (e *ConflictError) Error() string {
	if e.Fork {
		return fmt.Sprintf("witness: conflict: the witness cosigned another root at size %d", e.Size)
	}
	return fmt.Sprintf("witness: conflict: the witness is at size %d", e.Size)
}

// writeFileSync replaces path with the JSON of v durably: a temporary
// file, fsynced, renamed over path, and the folder fsynced.
func writeFileSync(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("witness: encode state: %w", err)
	}
	return WriteFileSync(path, append(b, '\n'))
}

// WriteFileSync replaces path with b durably: a temporary file beside it,
// fsynced, renamed over path, and the folder fsynced.
func WriteFileSync(path string, b []byte) error {
	dir := filepath.Dir(path)
	// A hidden name: never another file's, say DATA.cosigned.<chain>.
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("witness: write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	err = errors.Join(err, f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("witness: write %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("witness: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("witness: sync %s: %w", dir, err)
	}
	return nil
}
