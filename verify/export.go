package verify

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/eventstore/export"
)

// MaxExportLine is the longest export line, in bytes without its newline,
// that Export accepts. A longer line is reported as malformed.
const MaxExportLine = 64 << 20

// Export verifies a JSONL export (docs/export-format.md, written by
// export.Write) read from r, with the same rules and Checker as
// Store: each line is parsed strictly (export.ParseLine and
// ExportLine.Record), re-encoded with eventstore's canonical encoding and
// checked. Only the hashed fields count; the readable payload is ignored.
//
// The first line is the anchor: a file starting at seq 1 is checked from
// genesis; otherwise from the first line's seq and prev_hash, which the
// report names (AnchorSeq, AnchorPrevHash). An export has no stored head, so
// the report's HeadSeq and HeadHash are those of the last record checked. A
// file proves only that its records chain from its anchor to its head:
// compare both with values you trust (genesis, a published head) to detect a
// dropped beginning or end.
//
// Every line counts: a blank line, a line that is not a JSON object of the
// format or holds a value that does not parse is reported with kind
// KindMalformed, a message naming the line number and the reason, and
// BrokenAt set to the line's id if it could be read. A final line without a
// newline is accepted. A record found ahead of its position is reported as
// KindSeqMismatch (moved, e.g. two lines swapped) if the missing seq turns up
// later in the file, and as KindSeqGap (deleted) otherwise, as Store would
// report the same tampering of a store.
//
// The error is non-nil only when reading r failed or ctx ended; a broken
// file is a Report with Valid false. Memory use does not grow with the file,
// only with its longest line.
func Export(ctx context.Context, r io.Reader, opts ...Option) (Report, error) {
	o := newOptions(opts)
	br := bufio.NewReaderSize(r, 64<<10)
	e := exportCheck{cp: o.checkpoint, chain: o.chain}
	var buf []byte
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			return Report{}, err
		}
		line, tooLong, err := readExportLine(br, buf[:0], MaxExportLine)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Report{}, fmt.Errorf("verify export: line %d: %w", lineNo, err)
		}
		buf = line
		e.line(lineNo, line, tooLong)
		o.tick(uint64(lineNo))
	}
	report := e.finish()
	if o.checkpoint != nil && report.AnchorSeq != 1 {
		return Report{}, fmt.Errorf("verify export: a checkpoint is checked from genesis, and this export starts at seq %d", report.AnchorSeq)
	}
	return report, nil
}

// readExportLine reads one line into dst without its '\n'. It returns io.EOF
// only when no byte is left. A line longer than max is read to its end but
// returned as tooLong (and empty).
func readExportLine(br *bufio.Reader, dst []byte, max int) (line []byte, tooLong bool, err error) {
	read := false
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			read = true
		}
		if err == nil {
			chunk = chunk[:len(chunk)-1]
		}
		if !tooLong {
			if len(dst)+len(chunk) > max {
				tooLong, dst = true, dst[:0]
			} else {
				dst = append(dst, chunk...)
			}
		}
		switch {
		case err == nil:
			return dst, tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			if !read {
				return nil, false, io.EOF
			}
			return dst, tooLong, nil
		default:
			return nil, false, err
		}
	}
}

// exportCheck feeds the lines of an export to a Checker.
type exportCheck struct {
	c  *Checker // nil until the first line
	cp *checkpoint.Checkpoint
	// chain, when set, is the chain the records must name (ExpectChain).
	chain *string
	// next is the seq the next line must carry: the anchor seq, then one
	// more after each record that passed.
	next uint64
	// stored is the stored form (encoding || hash) of the current record.
	stored []byte
	// pending is the stored form of the first record found ahead of its
	// position (seq > next), held back until the end of the file tells
	// whether seq next turns up later (moved) or not (deleted).
	pending      []byte
	pendingSeq   uint64
	pendingFound bool
	afterPending uint64
}

func (e *exportCheck) line(lineNo int, raw []byte, tooLong bool) {
	if e.pending != nil {
		e.afterPending++
		if !e.pendingFound {
			l, _ := export.ParseLine(raw)
			if seq, ok := lineSeq(l); ok && seq == e.next {
				e.pendingFound = true
			}
		}
		return
	}
	if e.c != nil && e.c.Broken() {
		e.c.report.Total++ // after the first problem, lines are only counted
		return
	}
	var (
		l   export.Line
		rec eventstore.Record
		err error
	)
	switch {
	case tooLong:
		err = fmt.Errorf("longer than %d bytes", MaxExportLine)
	case len(bytes.TrimSpace(raw)) == 0:
		err = errors.New("blank line")
	default:
		if l, err = export.ParseLine(raw); err == nil {
			rec, err = l.Record()
		}
	}
	if e.c == nil {
		e.start(l.Chain, rec, err)
	}
	if err != nil {
		seq, ok := lineSeq(l)
		if !ok {
			seq = e.next
		}
		e.c.FailAt(seq, l.ID, KindMalformed, fmt.Sprintf("line %d: %v", lineNo, err))
		return
	}
	e.stored = rec.Encode(e.stored[:0])
	e.stored = append(e.stored, rec.Hash[:]...)
	if rec.Seq > e.next {
		e.pending = bytes.Clone(e.stored)
		e.pendingSeq = rec.Seq
		return
	}
	e.c.Add(e.next, e.stored)
	if !e.c.Broken() {
		e.next++
	}
}

// start creates the Checker from the first line: from genesis if it is seq
// 1 (or does not parse), else anchored at its seq and prev_hash.
func (e *exportCheck) start(chain string, first eventstore.Record, err error) {
	seq, prev := uint64(1), eventstore.GenesisPrevHash()
	if err == nil && first.Seq != 1 {
		seq, prev = first.Seq, first.PrevHash
	}
	if err == nil {
		chain = first.Chain
	}
	if e.chain != nil {
		chain = *e.chain
	}
	e.c = NewChecker(chain, seq, prev)
	if e.cp != nil && seq == 1 {
		e.c.tree = newTreeCheck(*e.cp)
	}
	e.next = seq
}

func (e *exportCheck) finish() Report {
	if e.c == nil { // empty file
		e.start("", eventstore.Record{}, errors.New("no lines"))
	}
	if e.pending != nil {
		pos := e.pendingSeq // seq e.next never came: deleted
		if e.pendingFound {
			pos = e.next // it came later: moved
		}
		e.c.Add(pos, e.pending)
		e.c.report.Total += e.afterPending
	}
	return e.c.Finish(eventstore.Head{}, false)
}

// lineSeq returns the seq of a line if it parses.
func lineSeq(l export.Line) (uint64, bool) {
	seq, err := strconv.ParseUint(l.Seq, 10, 64)
	return seq, err == nil
}
