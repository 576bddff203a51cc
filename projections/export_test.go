package projections

// WaitSnapshot waits until no snapshot is being saved.
func (l *Ledger) WaitSnapshot() {
	if l.snap != nil {
		l.snap.wg.Wait()
	}
}

// Envelope functions, for tests that forge stored snapshots.
var (
	SealEnvelope = sealEnvelope
	OpenEnvelope = openEnvelope
)
