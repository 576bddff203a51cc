package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/custos-dev/custos/eventstore/checkpoint"
	"github.com/custos-dev/custos/verify"
)

// errReceiptRejected makes verify --receipt exit 1 after its report.
var errReceiptRejected = errors.New("receipt rejected")

// receiptReport is what verify --receipt prints: valid, and either what
// the receipt proves or why it was rejected.
type receiptReport struct {
	Valid   bool                  `json:"valid"`
	Receipt *verify.ReceiptResult `json:"receipt,omitempty"`
	Problem string                `json:"problem,omitempty"`
}

// verifyReceiptFile checks the receipt in file against the verifier key
// (as is, or a file holding it) and prints the report: exit 0 when it
// proves its record, 1 when it is rejected, 2 when it cannot be read or
// the key does not parse.
func verifyReceiptFile(file, vkey string, stdout io.Writer) error {
	v, err := loadVerifier(vkey)
	if err != nil {
		return err
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("--receipt: %w", err)
	}
	var rep receiptReport
	res, err := verify.Receipt(text, v)
	if err != nil {
		rep.Problem = err.Error()
	} else {
		rep.Valid, rep.Receipt = true, &res
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	if !rep.Valid {
		return withCode(1, errReceiptRejected)
	}
	return nil
}

// loadVerifier parses --vkey: a note verifier key, or a file holding one.
func loadVerifier(vkey string) (*checkpoint.Verifier, error) {
	if vkey == "" {
		return nil, errors.New("--vkey is required")
	}
	if v, err := checkpoint.NewVerifier(vkey); err == nil {
		return v, nil
	} else if b, rerr := os.ReadFile(vkey); rerr != nil {
		return nil, fmt.Errorf("--vkey is neither a verifier key (%v) nor a readable file (%w)", err, rerr)
	} else {
		vkey = string(b)
	}
	v, err := checkpoint.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("--vkey: %w", err)
	}
	return v, nil
}
