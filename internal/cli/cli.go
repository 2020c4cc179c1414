// Package cli holds what the programs in cmd/ share for their command
// lines: flags that environment variables can also set, and flag types for
// lists, headers and compression settings.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// Env registers flags on FlagSet that can also be set by an environment
// variable: Prefix followed by the flag name in upper case with '-' as '_'.
// A flag given on the command line wins over the environment.
type Env struct {
	FlagSet *flag.FlagSet
	Prefix  string
}

// VarName returns the environment variable for the flag name.
func (e *Env) VarName(name string) string {
	return e.Prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func (e *Env) usage(name, usage string) string {
	return usage + " (env " + e.VarName(name) + ")"
}

// String registers a string flag.
func (e *Env) String(p *string, name, value, usage string) {
	e.FlagSet.StringVar(p, name, value, e.usage(name, usage))
}

// Int64 registers an int64 flag.
func (e *Env) Int64(p *int64, name string, value int64, usage string) {
	e.FlagSet.Int64Var(p, name, value, e.usage(name, usage))
}

// Int registers an int flag.
func (e *Env) Int(p *int, name string, value int, usage string) {
	e.FlagSet.IntVar(p, name, value, e.usage(name, usage))
}

// Bool registers a bool flag.
func (e *Env) Bool(p *bool, name string, value bool, usage string) {
	e.FlagSet.BoolVar(p, name, value, e.usage(name, usage))
}

// Var registers a flag of a custom type.
func (e *Env) Var(v flag.Value, name, usage string) {
	e.FlagSet.Var(v, name, e.usage(name, usage))
}

// Parse applies the environment, then the command line. An unusable value
// is reported with the variable or flag that holds it.
func (e *Env) Parse(args []string) error {
	var errs []error
	e.FlagSet.VisitAll(func(f *flag.Flag) {
		name := e.VarName(f.Name)
		if v, ok := os.LookupEnv(name); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("environment variable %s=%q: %v", name, v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return e.FlagSet.Parse(args)
}

// List is a flag holding comma-separated values; repeating it adds more.
type List []string

func (l *List) String() string { return strings.Join(*l, ",") }

// Set adds the comma-separated values of s.
func (l *List) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// Headers is a repeatable flag of "Name: value" HTTP headers.
type Headers []string

func (h *Headers) String() string { return strings.Join(*h, "; ") }

// Set adds one "Name: value" header.
func (h *Headers) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("header %q must look like 'Name: value'", s)
	}
	*h = append(*h, s)
	return nil
}

// Header returns the headers as an http.Header.
func (h Headers) Header() http.Header {
	out := http.Header{}
	for _, s := range h {
		name, value, _ := strings.Cut(s, ":")
		out.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return out
}

// Duration registers a time.Duration flag.
func (e *Env) Duration(p *time.Duration, name string, value time.Duration, usage string) {
	e.FlagSet.DurationVar(p, name, value, e.usage(name, usage))
}
