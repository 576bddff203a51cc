package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
)

// Log is what the Pusher reads: the log's latest durable signed checkpoint,
// its tree head and consistency proofs. *eventstore.Store has these
// methods.
type Log interface {
	SignedCheckpoint(ctx context.Context, chain string) ([]byte, error)
	TreeHead(ctx context.Context, chain string) (eventstore.TreeHead, error)
	ConsistencyProof(ctx context.Context, chain string, from, to uint64) ([]eventstore.Hash, error)
}

// Endpoint is a witness the Pusher pushes to: its URL prefix and its
// cosignature/v1 verifier key.
type Endpoint struct {
	URL  string
	Vkey string
}

// PusherConfig configures a Pusher.
type PusherConfig struct {
	Log   Log
	Chain string
	// LogVkey is the verifier key of Chain's checkpoints (the store's
	// ChainVerifierKey).
	LogVkey string
	// Countersigner, if set, is the deployment signing key. When LogVkey
	// is not its verifier key (a tenant's chain, signed by a key derived
	// from it: checkpoint.Signer.ForChain), every checkpoint pushed also
	// carries its signature, so that a witness that follows the deployment
	// verifier key (a key named NAME covers origins NAME/CHAIN) accepts
	// the chain; what is kept and served carries the chain key's
	// signature and the cosignatures only.
	Countersigner *checkpoint.Signer
	Witnesses     []Endpoint
	// Quorum is how many witnesses must cosign a checkpoint before it is
	// kept and served as cosigned (1 to len(Witnesses)).
	Quorum int
	// Interval is how often the latest checkpoint is pushed while it
	// changes.
	Interval time.Duration
	// Timeout bounds one add-checkpoint request.
	Timeout time.Duration
	// StatePath is the file that keeps the latest checkpoint cosigned by
	// a quorum, replaced durably (fsync) each time.
	StatePath string
	Client    *http.Client
	Logger    *slog.Logger
}

// Pusher pushes a log's checkpoints to witnesses, in the background, and
// keeps the latest one a quorum cosigned. It never holds up the log: a
// witness that is down only delays cosigning. Safe for concurrent use.
type Pusher struct {
	cfg       PusherConfig
	logV      note.Verifier
	witnesses []*remote
	// counter countersigns what is pushed (nil: the log's note as it is);
	// witnessVkey is the key the witnesses check it with.
	counter     *checkpoint.Signer
	witnessVkey string

	mu       sync.Mutex
	cosigned []byte
}

// remote is the Pusher's view of one witness; only the goroutine of the
// current round touches it.
type remote struct {
	Endpoint
	v      *CosignatureVerifier
	size   uint64 // the size the witness holds, as last learned
	sigFor []byte // the note that sig cosigns
	sig    []byte
	down   bool
}

// NewPusher checks the configuration and reads the cosigned checkpoint
// kept at StatePath, if any.
func NewPusher(cfg PusherConfig) (*Pusher, error) {
	if len(cfg.Witnesses) == 0 || cfg.Quorum < 1 || cfg.Quorum > len(cfg.Witnesses) {
		return nil, fmt.Errorf("witness: quorum %d of %d witnesses: want 1 to the number of witnesses", cfg.Quorum, len(cfg.Witnesses))
	}
	if cfg.Interval <= 0 || cfg.Timeout <= 0 || cfg.Log == nil || cfg.Client == nil || cfg.Logger == nil || cfg.StatePath == "" {
		return nil, errors.New("witness: Log, Interval, Timeout, StatePath, Client and Logger are required")
	}
	logV, err := note.NewVerifier(strings.TrimSpace(cfg.LogVkey))
	if err != nil {
		return nil, fmt.Errorf("witness: log key: %w", err)
	}
	p := &Pusher{cfg: cfg, logV: logV, witnessVkey: strings.TrimSpace(cfg.LogVkey)}
	if c := cfg.Countersigner; c != nil && c.VerifierKey() != p.witnessVkey {
		p.counter, p.witnessVkey = c, c.VerifierKey()
	}
	seen := map[string]bool{}
	for _, e := range cfg.Witnesses {
		v, err := NewCosignatureVerifier(e.Vkey)
		if err != nil {
			return nil, fmt.Errorf("witness %s: %w", e.URL, err)
		}
		if seen[e.Vkey] {
			return nil, fmt.Errorf("witness %s: the key %s is given twice", e.URL, v.Name())
		}
		seen[e.Vkey] = true
		p.witnesses = append(p.witnesses, &remote{Endpoint: e, v: v})
	}
	b, err := os.ReadFile(cfg.StatePath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("witness: read cosigned checkpoint: %w", err)
	default:
		p.cosigned = b
	}
	return p, nil
}

// Cosigned returns the latest checkpoint that a quorum of witnesses
// cosigned, with their cosignature lines appended, or nil.
func (p *Pusher) Cosigned() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.cosigned)
}

// ErrInconsistent means the log contradicts a checkpoint that witnesses
// cosigned.
var ErrInconsistent = errors.New("witness: the log contradicts its latest cosigned checkpoint")

// CheckLog checks the log against the kept cosigned checkpoint: signed by
// the log's key for the chain and a quorum of the witnesses, of a size the
// log has, and consistent with the log's tree. The tree itself is checked
// against the records elsewhere (serve replays the chain against its own
// checkpoint at start). No cosigned checkpoint kept yet is not an error.
func (p *Pusher) CheckLog(ctx context.Context) error {
	msg := p.Cosigned()
	if msg == nil {
		return nil
	}
	vkeys := make([]string, len(p.witnesses))
	for i, w := range p.witnesses {
		vkeys[i] = w.Vkey
	}
	if _, err := CheckCosigned(msg, p.cfg.LogVkey, vkeys, p.cfg.Quorum); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInconsistent, p.cfg.StatePath, err)
	}
	cv, err := checkpoint.NewVerifier(p.cfg.LogVkey)
	if err != nil {
		return err
	}
	cp, err := cv.Open(msg, p.cfg.Chain)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInconsistent, p.cfg.StatePath, err)
	}
	head, err := p.cfg.Log.TreeHead(ctx, p.cfg.Chain)
	if err != nil {
		return err
	}
	switch {
	case cp.Size > head.Size:
		return fmt.Errorf("%w: witnesses cosigned size %d, the log has %d records (truncated)", ErrInconsistent, cp.Size, head.Size)
	case cp.Size == head.Size:
		if cp.Root != [32]byte(head.Root) {
			return fmt.Errorf("%w: witnesses cosigned another root at size %d (rewritten or forked)", ErrInconsistent, cp.Size)
		}
	case cp.Size > 0:
		proof, err := p.cfg.Log.ConsistencyProof(ctx, p.cfg.Chain, cp.Size, head.Size)
		if err != nil {
			return err
		}
		if err := tlog.CheckTree(toTlog(proof), int64(head.Size), tlog.Hash(head.Root), int64(cp.Size), tlog.Hash(cp.Root)); err != nil {
			return fmt.Errorf("%w: the log's tree at %d does not extend the cosigned tree at %d (rewritten or forked): %w", ErrInconsistent, head.Size, cp.Size, err)
		}
	}
	return nil
}

func toTlog(p []eventstore.Hash) tlog.TreeProof {
	out := make(tlog.TreeProof, len(p))
	for i := range p {
		out[i] = tlog.Hash(p[i])
	}
	return out
}

// outgoing is what is pushed for the log's note msg: msg itself, or msg
// countersigned by the deployment key.
func (p *Pusher) outgoing(msg []byte) ([]byte, error) {
	if p.counter == nil {
		return msg, nil
	}
	out, err := p.counter.Countersign(msg)
	if err != nil {
		return nil, fmt.Errorf("witness: countersign chain %s's checkpoint: %w", p.cfg.Chain, err)
	}
	return out, nil
}

// Run pushes every Interval until ctx is done.
func (p *Pusher) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		p.PushOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PushOnce pushes the latest checkpoint to every witness that has not
// cosigned it, in parallel, and keeps it if a quorum has. Failures are
// logged (once per witness until it recovers), never returned: the next
// round retries.
func (p *Pusher) PushOnce(ctx context.Context) {
	msg, err := p.cfg.Log.SignedCheckpoint(ctx, p.cfg.Chain)
	if errors.Is(err, eventstore.ErrNoCheckpoint) {
		return
	}
	if err != nil {
		p.cfg.Logger.Warn("witness push: read the latest checkpoint", "chain", p.cfg.Chain, "err", err)
		return
	}
	cp, err := checkpoint.Parse(checkpoint.Text(msg))
	if err != nil {
		p.cfg.Logger.Error("witness push: own checkpoint is malformed", "chain", p.cfg.Chain, "err", err)
		return
	}
	var wg sync.WaitGroup
	var out []byte
	for _, w := range p.witnesses {
		if bytes.Equal(w.sigFor, msg) {
			continue
		}
		if out == nil {
			if out, err = p.outgoing(msg); err != nil {
				p.cfg.Logger.Error("witness push", "chain", p.cfg.Chain, "err", err)
				return
			}
		}
		wg.Go(func() { _ = p.push(ctx, w, msg, out, cp) })
	}
	wg.Wait()
	var sigs [][]byte
	for _, w := range p.witnesses {
		if bytes.Equal(w.sigFor, msg) {
			sigs = append(sigs, w.sig)
		}
	}
	if len(sigs) < p.cfg.Quorum {
		return
	}
	p.mu.Lock()
	kept := p.cosigned
	p.mu.Unlock()
	combined := append(bytes.Clone(msg), bytes.Join(sigs, nil)...)
	if bytes.Equal(kept, combined) {
		return
	}
	if err := WriteFileSync(p.cfg.StatePath, combined); err != nil {
		p.cfg.Logger.Error("witness push: keep the cosigned checkpoint", "chain", p.cfg.Chain, "err", err)
		return
	}
	p.mu.Lock()
	p.cosigned = combined
	p.mu.Unlock()
	p.cfg.Logger.Debug("checkpoint cosigned", "chain", p.cfg.Chain, "size", cp.Size, "witnesses", len(sigs))
}

// push sends out (msg, the log's note, as pushed: see outgoing) to w,
// learning w's size from a 409 and retrying once. It returns the last
// error, after logging it.
func (p *Pusher) push(ctx context.Context, w *remote, msg, out []byte, cp checkpoint.Checkpoint) error {
	for attempt := 0; ; attempt++ {
		sig, err := p.send(ctx, w, out, cp)
		var conflict *ConflictError
		if errors.As(err, &conflict) && !conflict.Fork && attempt == 0 && conflict.Size != w.size {
			w.size = conflict.Size
			continue
		}
		if err != nil {
			switch {
			case errors.Is(err, ErrKeyRefused) && !w.down:
				p.cfg.Logger.Error("witness refuses the log's signature: the log's signing key is not the one the witness knows; decisions go on, this witness cosigns nothing",
					"witness", w.URL, "chain", p.cfg.Chain, "size", cp.Size, "log_key", p.witnessVkey, "err", err)
			case !w.down || errors.As(err, &conflict):
				p.cfg.Logger.Warn("witness did not cosign; decisions go on, cosigning waits", "witness", w.URL, "chain", p.cfg.Chain, "size", cp.Size, "err", err)
			}
			w.down = true
			return err
		}
		if w.down {
			p.cfg.Logger.Info("witness cosigns again", "witness", w.URL, "chain", p.cfg.Chain, "size", cp.Size)
		}
		w.down, w.size, w.sigFor, w.sig = false, cp.Size, msg, sig
		return nil
	}
}

// CheckWitnesses asks every witness, once, to cosign the log's latest
// checkpoint, and returns ErrInconsistent if one that answers holds a
// checkpoint the log contradicts: a larger size (the log was truncated),
// another root at the same size (forked) or a consistency proof it refuses
// (rewritten). This is the start check that needs nothing kept on this
// host, so deleting the kept cosigned checkpoint does not disarm it. A
// witness that refuses the log's signature (403: it holds another key for
// the origin, so the signing key was replaced or the folder re-initialised)
// fails it too, with an error matching ErrKeyRefused that names the
// witness; when both happen the error matches both. A witness that does
// not answer, or refuses for another reason (say, an origin it does not
// follow), is only logged: a witness that is down delays cosigning, it
// never stops the service. Call it before Run.
func (p *Pusher) CheckWitnesses(ctx context.Context) error {
	_, err := p.checkWitnesses(ctx, func(string) bool { return false })
	return err
}

// checkWitnesses is CheckWitnesses without asking the witnesses whose URL
// skip reports (known to be down); it also returns the URLs of those it
// asked that did not answer.
func (p *Pusher) checkWitnesses(ctx context.Context, skip func(url string) bool) (unreachable []string, err error) {
	msg, err := p.cfg.Log.SignedCheckpoint(ctx, p.cfg.Chain)
	if errors.Is(err, eventstore.ErrNoCheckpoint) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("witness: start check: %w", err)
	}
	cp, err := checkpoint.Parse(checkpoint.Text(msg))
	if err != nil {
		return nil, fmt.Errorf("witness: start check: own checkpoint: %w", err)
	}
	out, err := p.outgoing(msg)
	if err != nil {
		return nil, fmt.Errorf("witness: start check: %w", err)
	}
	errs := make([]error, len(p.witnesses))
	var wg sync.WaitGroup
	for i, w := range p.witnesses {
		if skip(w.URL) {
			continue
		}
		wg.Go(func() { errs[i] = p.push(ctx, w, msg, out, cp) })
	}
	wg.Wait()
	for i, err := range errs {
		var u *unreachableError
		if errors.As(err, &u) {
			unreachable = append(unreachable, p.witnesses[i].URL)
		}
	}
	var contradictions, refusals []string
	for i, err := range errs {
		var conflict *ConflictError
		switch {
		case errors.Is(err, ErrKeyRefused):
			refusals = append(refusals, p.witnesses[i].URL)
		case errors.Is(err, ErrInconsistent):
			contradictions = append(contradictions, strings.TrimPrefix(err.Error(), ErrInconsistent.Error()+": ")+" ("+p.witnesses[i].URL+")")
		case errors.Is(err, ErrProofRefused):
			contradictions = append(contradictions, err.Error())
		case errors.As(err, &conflict) && conflict.Fork:
			contradictions = append(contradictions, fmt.Sprintf("witness %s cosigned another root at size %d (rewritten or forked)", p.witnesses[i].URL, conflict.Size))
		}
	}
	var failed []error
	if len(contradictions) > 0 {
		failed = append(failed, fmt.Errorf("%w: %s", ErrInconsistent, strings.Join(contradictions, "; ")))
	}
	if len(refusals) > 0 {
		failed = append(failed, fmt.Errorf("%w: witness %s: the log's signing key (verifier key %s) is not the one the witness knows for origin %s; "+
			"was the signing key replaced or the data folder re-initialised? Restore the key the witness knows, or have its operator change the key it follows",
			ErrKeyRefused, strings.Join(refusals, ", "), p.witnessVkey, cp.Origin))
	}
	return unreachable, errors.Join(failed...)
}

// send pushes msg, as pushed (see outgoing), to w and returns w's
// cosignature lines.
func (p *Pusher) send(ctx context.Context, w *remote, msg []byte, cp checkpoint.Checkpoint) ([]byte, error) {
	var proof []eventstore.Hash
	if w.size > cp.Size {
		return nil, fmt.Errorf("%w: the witness holds size %d, the log only %d", ErrInconsistent, w.size, cp.Size)
	}
	if w.size > 0 && w.size < cp.Size {
		var err error
		if proof, err = p.cfg.Log.ConsistencyProof(ctx, p.cfg.Chain, w.size, cp.Size); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	answer, err := AddCheckpoint(ctx, p.cfg.Client, w.URL, w.size, proof, msg)
	if err != nil {
		return nil, err
	}
	// Keep only w's valid cosignature lines.
	n, err := note.Open(append(bytes.Clone(msg), answer...), note.VerifierList(p.logV, w.v))
	if err != nil {
		return nil, fmt.Errorf("witness %s: answer does not verify: %w", w.URL, err)
	}
	var sig []byte
	for _, line := range strings.SplitAfter(string(answer), "\n") {
		for _, s := range n.Sigs {
			if s.Name == w.v.Name() && s.Hash == w.v.KeyHash() && strings.HasPrefix(line, "— "+w.v.Name()+" ") {
				sig = append(sig, line...)
				break
			}
		}
	}
	if sig == nil {
		return nil, fmt.Errorf("witness %s: no cosignature by its key %s in the answer", w.URL, w.v.Name())
	}
	return sig, nil
}
