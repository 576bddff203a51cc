package writeside_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/projections/writeside"
)

// authTestLedger opens a Ledger on a fresh store whose clock is *clock
// (Unix seconds).
func authTestLedger(t *testing.T, clock *atomic.Int64) *writeside.Ledger {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	store, err := eventstore.Open(eventstore.Options{Dir: t.TempDir(), CreateIfMissing: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	l, err := writeside.Open(context.Background(), writeside.Config{
		Store: store, Logger: quiet, SnapshotEvery: writeside.NoSnapshots,
		Clock: func() time.Time { return time.Unix(clock.Load(), 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func authTestKey(t *testing.T, l *writeside.Ledger, actor, name, scope string) (string, string) {
	t.Helper()
	created, plaintext, _, err := l.CreateKey(context.Background(), actor, keys.CreateCommand{Name: name, Scope: scope})
	if err != nil {
		t.Fatal(err)
	}
	return created.KeyID, plaintext
}

// TestAuthenticateCachedFollowsChanges checks that keys Authenticate has
// cached follow rotation (with and without grace), revocation, use and
// expiry exactly as the state does.
func TestAuthenticateCachedFollowsChanges(t *testing.T) {
	ctx := context.Background()
	var clock atomic.Int64
	clock.Store(1_900_000_000)
	l := authTestLedger(t, &clock)
	adminID, admin := authTestKey(t, l, writeside.ActorInit, "admin", "admin")
	id, plain := authTestKey(t, l, adminID, "k", "evaluate")

	if _, err := l.Authenticate("cst_not-a-key"); !errors.Is(err, keys.ErrInvalidKey) {
		t.Fatalf("malformed key: %v", err)
	}
	for range 2 { // first lookup fills the cache, the second reads it
		k, err := l.Authenticate(plain)
		if err != nil || k.KeyID != id || k.LastUsedAt != nil {
			t.Fatalf("Authenticate = %+v, %v", k, err)
		}
	}
	// key.used reaches the cached key, so RecordUse does not repeat it.
	k, _ := l.Authenticate(plain)
	l.RecordUse(ctx, k)
	if k, err := l.Authenticate(plain); err != nil || k.LastUsedAt == nil || keys.ShouldRecordUse(k, l.Now()) {
		t.Fatalf("after RecordUse: %+v, %v", k, err)
	}

	// Rotation with grace: the old key works until the grace ends.
	grace := 30
	rotated, newPlain, err := l.RotateKey(ctx, adminID, keys.RotateCommand{KeyID: id, GraceSeconds: &grace})
	if err != nil {
		t.Fatal(err)
	}
	if k, err := l.Authenticate(plain); err != nil || k.RotatedTo != rotated.NewKey.KeyID || k.RevokedAt == nil {
		t.Fatalf("old key in grace: %+v, %v", k, err)
	}
	if k, err := l.Authenticate(newPlain); err != nil || k.KeyID != rotated.NewKey.KeyID {
		t.Fatalf("new key: %+v, %v", k, err)
	}
	clock.Add(int64(grace))
	if _, err := l.Authenticate(plain); !errors.Is(err, keys.ErrInvalidKey) {
		t.Fatalf("old key after grace: %v", err)
	}

	// Rotation without grace and revocation take effect when they return.
	rotated2, newPlain2, err := l.RotateKey(ctx, adminID, keys.RotateCommand{KeyID: rotated.NewKey.KeyID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Authenticate(newPlain); !errors.Is(err, keys.ErrInvalidKey) {
		t.Fatalf("rotated key without grace: %v", err)
	}
	if _, err := l.RevokeKey(ctx, adminID, adminID, rotated2.NewKey.KeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Authenticate(newPlain2); !errors.Is(err, keys.ErrInvalidKey) {
		t.Fatalf("revoked key: %v", err)
	}

	// Expiry is checked against the clock at each call.
	if _, err := l.Authenticate(admin); err != nil {
		t.Fatal(err)
	}
	adminKey, _ := l.Key(adminID)
	clock.Store(adminKey.ExpiresAt.Unix())
	if _, err := l.Authenticate(admin); !errors.Is(err, keys.ErrInvalidKey) {
		t.Fatalf("expired key: %v", err)
	}
}

// TestAuthenticateLockFreeConcurrent authenticates from many goroutines
// while keys are rotated, revoked and used, under -race: a change is
// visible to every Authenticate that starts after it returns, and a key
// never comes back once it stopped working.
func TestAuthenticateLockFreeConcurrent(t *testing.T) {
	ctx := context.Background()
	var clock atomic.Int64
	clock.Store(1_900_000_000)
	l := authTestLedger(t, &clock)
	adminID, _ := authTestKey(t, l, writeside.ActorInit, "admin", "admin")

	const n = 8
	type slot struct {
		id, plain string
		dead      atomic.Bool // set after the change that stopped it returned
	}
	var mu sync.Mutex
	var all []*slot
	live := make([]*slot, n)
	for i := range live {
		id, plain := authTestKey(t, l, adminID, fmt.Sprintf("k%d", i), "evaluate")
		live[i] = &slot{id: id, plain: plain}
		all = append(all, live[i])
	}
	snapshot := func() []*slot {
		mu.Lock()
		defer mu.Unlock()
		return append([]*slot(nil), all...)
	}

	stop := make(chan struct{})
	var readers sync.WaitGroup
	var failures atomic.Int64
	for r := range 6 {
		readers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				slots := snapshot()
				s := slots[(i+r)%len(slots)]
				dead := s.dead.Load()
				k, err := l.Authenticate(s.plain)
				switch {
				case err == nil && dead:
					failures.Add(1)
					t.Errorf("key %s authenticated after it was stopped", s.id)
				case err == nil && k.KeyID != s.id:
					failures.Add(1)
					t.Errorf("key %s authenticated as %s", s.id, k.KeyID)
				case err == nil:
					l.RecordUse(ctx, k)
				case !errors.Is(err, keys.ErrInvalidKey):
					t.Errorf("Authenticate: %v", err)
				}
				if failures.Load() > 5 {
					return
				}
			}
		})
	}

	for round := range 60 {
		i := round % n
		old := live[i]
		if round%3 == 2 {
			if _, err := l.RevokeKey(ctx, adminID, adminID, old.id); err != nil {
				t.Fatal(err)
			}
			old.dead.Store(true)
			id, plain := authTestKey(t, l, adminID, fmt.Sprintf("k%d-%d", i, round), "evaluate")
			live[i] = &slot{id: id, plain: plain}
		} else {
			rotated, plain, err := l.RotateKey(ctx, adminID, keys.RotateCommand{KeyID: old.id})
			if err != nil {
				t.Fatal(err)
			}
			old.dead.Store(true)
			live[i] = &slot{id: rotated.NewKey.KeyID, plain: plain}
		}
		if _, err := l.Authenticate(old.plain); !errors.Is(err, keys.ErrInvalidKey) {
			t.Fatalf("round %d: stopped key %s still authenticates: %v", round, old.id, err)
		}
		if k, err := l.Authenticate(live[i].plain); err != nil || k.KeyID != live[i].id {
			t.Fatalf("round %d: new key: %+v, %v", round, k, err)
		}
		mu.Lock()
		all = append(all, live[i])
		mu.Unlock()
		if round%10 == 9 {
			clock.Add(61) // let key.used be recorded again
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	readers.Wait()
}
