// Package platform holds what every autotriage binary needs before it does
// any work: typed configuration from the environment, JSON logging that never
// prints a secret, the debug HTTP server (health, readiness, metrics, pprof),
// build information, and the run/exit contract of a main package.
package platform

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/caarlos0/env/v11"
)

// ConfigError is a bad or missing setting. A main package that gets one prints
// its single line and exits with code 2.
type ConfigError struct {
	Var string // the environment variable at fault
	Msg string
}

func (e *ConfigError) Error() string { return fmt.Sprintf("config: %s: %s", e.Var, e.Msg) }

// ErrHelp is returned by LoadConfig when the arguments ask for help; the help
// text has already been written.
var ErrHelp = errors.New("help requested")

// Var describes one environment variable of a configuration struct.
type Var struct {
	Name     string
	Default  string
	Required bool
	Secret   bool // also read from <Name>_FILE
	Help     string
	field    string
}

// Vars lists the variables of a configuration struct in declaration order,
// nested structs included. Struct tags: `env:"NAME"`, `envDefault:"..."`,
// `help:"..."`, and `secret:"true"` for values that may come from NAME_FILE
// and must never be printed.
func Vars(cfg any) []Var {
	var all []Var
	walkVars(reflect.TypeOf(cfg), "", &all)
	// Parts of a combined configuration (all stages in one process) may
	// share a variable, such as AUTOTRIAGE_TAG; list it once.
	seen := map[string]bool{}
	out := all[:0]
	for _, v := range all {
		if !seen[v.Name] {
			seen[v.Name] = true
			out = append(out, v)
		}
	}
	return out
}

func walkVars(t reflect.Type, prefix string, out *[]Var) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, ok := f.Tag.Lookup("env")
		if !ok {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walkVars(ft, prefix+f.Tag.Get("envPrefix"), out)
			}
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			continue
		}
		def, hasDef := f.Tag.Lookup("envDefault")
		v := Var{
			Name:     prefix + name,
			Default:  def,
			Required: strings.Contains(","+opts+",", ",required,") || strings.Contains(","+opts+",", ",notEmpty,"),
			Secret:   f.Tag.Get("secret") == "true",
			Help:     f.Tag.Get("help"),
			field:    f.Name,
		}
		if !hasDef {
			v.Default = ""
		}
		*out = append(*out, v)
	}
}

// LoadConfig fills cfg (a pointer to a struct) from the environment. args are
// the command-line arguments after the program name: "-h", "--help" or "help"
// print the variable reference to w and return ErrHelp; anything else is an
// error, since configuration comes only from the environment. Secret
// variables also accept NAME_FILE, the path of a file holding the value.
func LoadConfig(cfg any, args []string, program, summary string, w io.Writer) error {
	return LoadConfigFrom(cfg, args, program, summary, w, environ())
}

// LoadConfigFrom is LoadConfig with an explicit environment, for tests.
func LoadConfigFrom(cfg any, args []string, program, summary string, w io.Writer, environment map[string]string) error {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "help":
			PrintHelp(w, cfg, program, summary)
			return ErrHelp
		default:
			return &ConfigError{Var: "argument " + a, Msg: "unknown argument; " + program + " is configured by environment variables (see --help)"}
		}
	}
	vars := Vars(cfg)
	environment = cloneEnv(environment)
	for _, v := range vars {
		if !v.Secret {
			continue
		}
		path := environment[v.Name+"_FILE"]
		if path == "" {
			continue
		}
		if _, set := environment[v.Name]; set {
			return &ConfigError{Var: v.Name, Msg: "set both " + v.Name + " and " + v.Name + "_FILE; choose one"}
		}
		b, err := readSecretFile(path)
		if err != nil {
			return &ConfigError{Var: v.Name + "_FILE", Msg: err.Error()}
		}
		environment[v.Name] = b
	}
	err := env.ParseWithOptions(cfg, env.Options{Environment: environment})
	if err == nil {
		if val, ok := cfg.(interface{ Validate() error }); ok {
			if err := val.Validate(); err != nil {
				var ce *ConfigError
				if errors.As(err, &ce) {
					return ce
				}
				return validationError(err)
			}
		}
		return nil
	}
	return configErrorFrom(err, vars)
}

// validationError turns a Validate error into one ConfigError line, taking
// the variable name from a leading "NAME: " when the message has one.
func validationError(err error) error {
	msg := strings.SplitN(err.Error(), "\n", 2)[0]
	if name, rest, ok := strings.Cut(msg, ": "); ok && isVarName(name) {
		return &ConfigError{Var: name, Msg: rest}
	}
	return &ConfigError{Var: "config", Msg: msg}
}

func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// FirstError returns the first non-nil error, for Validate methods that
// check several parts: configuration errors are reported one line at a time.
func FirstError(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// readSecretFile reads a secret file of bounded size and trims the trailing
// newline that editors and `echo` add.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read secret file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10+1))
	if err != nil {
		return "", fmt.Errorf("cannot read secret file: %w", err)
	}
	if len(b) > 64<<10 {
		return "", errors.New("secret file is larger than 64 KiB")
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// configErrorFrom turns the first error of env's aggregate into one line that
// names the variable. It never includes the offending value, which might be a
// secret.
func configErrorFrom(err error, vars []Var) error {
	var agg env.AggregateError
	if errors.As(err, &agg) && len(agg.Errors) > 0 {
		err = agg.Errors[0]
	}
	var notSet env.VarIsNotSetError
	var empty env.EmptyVarError
	var perr env.ParseError
	switch {
	case errors.As(err, &notSet):
		return &ConfigError{Var: notSet.Key, Msg: "required variable is not set"}
	case errors.As(err, &empty):
		return &ConfigError{Var: empty.Key, Msg: "must not be empty"}
	case errors.As(err, &perr):
		name := perr.Name
		for _, v := range vars {
			if v.field == perr.Name {
				name = v.Name
				break
			}
		}
		msg := "invalid value for type " + perr.Type.String()
		var inner error = perr.Err
		if inner != nil {
			msg = "invalid value: " + sanitizeParseErr(inner)
		}
		return &ConfigError{Var: name, Msg: msg}
	}
	return &ConfigError{Var: "config", Msg: err.Error()}
}

// sanitizeParseErr keeps the reason of a parse error without echoing the value.
func sanitizeParseErr(err error) string {
	s := err.Error()
	// strconv errors look like `strconv.ParseInt: parsing "abc": invalid syntax`.
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s, "parsing ") {
		return s[i+2:]
	}
	return s
}

// PrintHelp writes the reference of every variable with its default and meaning.
func PrintHelp(w io.Writer, cfg any, program, summary string) {
	fmt.Fprintf(w, "%s: %s\n\nConfiguration is read from environment variables:\n\n", program, summary)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	for _, v := range Vars(cfg) {
		def := v.Default
		switch {
		case v.Required:
			def = "(required)"
		case def == "":
			def = `""`
		}
		help := v.Help
		if v.Secret {
			help += " (secret; or " + v.Name + "_FILE)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, def, help)
	}
	tw.Flush()
}

func environ() map[string]string {
	m := make(map[string]string)
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func cloneEnv(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// SortedVarNames is a convenience for tests and docs.
func SortedVarNames(cfg any) []string {
	var names []string
	for _, v := range Vars(cfg) {
		names = append(names, v.Name)
	}
	sort.Strings(names)
	return names
}
