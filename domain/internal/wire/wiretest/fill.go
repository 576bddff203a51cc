// Package wiretest fills values for snapshot round-trip tests: every field
// of a struct, recursively, gets a distinct non-zero value, so a field that
// a snapshot forgets to write shows up as a difference after restoring.
package wiretest

import (
	"fmt"
	"reflect"
	"time"
)

// Lists says how Fill treats slices: a slice at slice depth EmptyAt becomes
// a non-nil empty slice, one at NilAt stays nil, and any other gets two
// elements. Use -1 to select no depth.
type Lists struct{ EmptyAt, NilAt int }

// Variants are the list treatments a round-trip test should cover.
var Variants = []Lists{{-1, -1}, {0, -1}, {1, -1}, {2, -1}, {-1, 0}, {-1, 1}, {-1, 2}}

// Fill sets every field reachable from ptr (a pointer to a struct) to a
// distinct non-zero value. Times are UTC with nanoseconds. It panics on a
// kind it does not know, so that a new kind of field extends the test.
func Fill(ptr any, lists Lists) {
	f := filler{lists: lists}
	f.fill(reflect.ValueOf(ptr).Elem(), 0)
}

type filler struct {
	lists Lists
	n     int
}

func (f *filler) fill(v reflect.Value, depth int) {
	f.n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("v%d", f.n))
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(f.n) * 7)
	case reflect.Uint64, reflect.Uint32, reflect.Uint, reflect.Uint8:
		v.SetUint(uint64(f.n) * 1000003 % (1 << (v.Type().Bits() - 1)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Array:
		for i := range v.Len() {
			f.fill(v.Index(i), depth)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		f.fill(v.Elem(), depth)
	case reflect.Slice:
		switch depth {
		case f.lists.NilAt:
		case f.lists.EmptyAt:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			v.Set(reflect.MakeSlice(v.Type(), 2, 2))
			for i := range 2 {
				f.fill(v.Index(i), depth+1)
			}
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			t := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(f.n)*time.Hour + time.Duration(f.n))
			v.Set(reflect.ValueOf(t))
			return
		}
		for i := range v.NumField() {
			field := v.Field(i)
			if !field.CanSet() {
				// Unexported: reach it through its address.
				field = reflect.NewAt(field.Type(), field.Addr().UnsafePointer()).Elem()
			}
			f.fill(field, depth)
		}
	default:
		panic("wiretest: unhandled kind " + v.Kind().String() + ": extend Fill")
	}
}
