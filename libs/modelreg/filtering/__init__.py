"""One filter language for every List call: a schema, a syntax, a typed AST, a SQL compiler.

- `schema`: what a service lets a filter name (fields, types, operators), its domain's;
- `lexer` + `parser`: the AIP-160-style text syntax -> the typed AST (`ast`);
  `literals` types single values, for any other surface syntax to reuse;
- `postgres`: the AST -> parameterised SQL through the schema and the column
  each field is stored in, which the service's storage adapter supplies.

Pure: no database driver, no gRPC; a domain may import it.
"""

from modelreg.filtering.ast import (
    And,
    Compare,
    Exists,
    Field,
    Has,
    In,
    Like,
    Literal,
    LiteralKind,
    Node,
    Not,
    Or,
)
from modelreg.filtering.errors import ParseError
from modelreg.filtering.parser import parse
from modelreg.filtering.postgres import Compiler, compile_filter
from modelreg.filtering.schema import FieldSpec, FieldType, Schema

__all__ = [
    "And",
    "Compare",
    "Compiler",
    "Exists",
    "Field",
    "FieldSpec",
    "FieldType",
    "Has",
    "In",
    "Like",
    "Literal",
    "LiteralKind",
    "Node",
    "Not",
    "Or",
    "ParseError",
    "Schema",
    "compile_filter",
    "parse",
]
