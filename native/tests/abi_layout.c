/*
 * abi_layout.c - prints what the C compiler says about include/ddim.h, one fact a line, for
 * BindingDriftTest to compare with the jextract bindings in org.ddim4j.ffi:
 *
 *   header sha256 <hex>                                   the ddim.h this program was built from
 *   struct <name> size <bytes> align <bytes>              ("union" for a union)
 *   field <struct>.<field> offset <bytes> size <bytes> align <bytes> type <type>
 *   const <NAME> <type> <value>                           an enum constant or a #define; <type> string for a string
 *   function <name> args <n> returns <type> params <type>...
 *   callback <name> args <n> returns <type> params <type>...   a function pointer typedef
 *   typedef <name> type <type>                            any other typedef
 *   error <message>                                       a declaration this check cannot vouch for
 *
 * A <type> is what a binding has to reproduce: a kind and a size in bytes (int4, uint8, float8,
 * ptr8, struct88, union16, void) or an array of them (int4[8]). Pointee types and signedness do not
 * reach jextract's layouts, so only the `u` says the latter.
 *
 * The list of declarations is abi_layout_decls.h, which native/tests/abi_layout.cmake writes from
 * ddim.h at build time: a new struct, field, constant or function is covered without editing this
 * file. Each function's parameter types there are checked against its declaration here. Needs GCC or
 * Clang (__builtin_classify_type, __builtin_types_compatible_p, __typeof__).
 */
#include <stddef.h>
#include <stdio.h>

#include "ddim.h"

/* The type classes __builtin_classify_type returns (GCC's typeclass.h; Clang uses the same). */
enum {
    INTEGER_CLASS = 1,
    CHAR_CLASS = 2,
    ENUM_CLASS = 3,
    BOOLEAN_CLASS = 4,
    POINTER_CLASS = 5,
    REAL_CLASS = 8,
    RECORD_CLASS = 12,
    UNION_CLASS = 13
};

static void print_type(int type_class, int is_unsigned, size_t size) {
    switch (type_class) {
    case INTEGER_CLASS:
    case CHAR_CLASS:
    case ENUM_CLASS:
    case BOOLEAN_CLASS:
        printf("%s%zu", is_unsigned ? "uint" : "int", size);
        break;
    case POINTER_CLASS:
        printf("ptr%zu", size);
        break;
    case REAL_CLASS:
        printf("float%zu", size);
        break;
    case RECORD_CLASS:
        printf("struct%zu", size);
        break;
    case UNION_CLASS:
        printf("union%zu", size);
        break;
    default: /* complex numbers, vectors: nothing jextract binds as a value */
        printf("class%d_%zu", type_class, size);
        break;
    }
}

/* The expressions below are only classified and measured, never evaluated. An enum type is
 * compatible with its underlying integer type, so it takes that type's signedness. */
#define IS_UNSIGNED(expression)                                                                                 \
    _Generic((expression), _Bool: 1, unsigned char: 1, unsigned short: 1, unsigned int: 1, unsigned long: 1, \
             unsigned long long: 1, default: 0)
#define PRINT_TYPE_OF(expression) \
    print_type(__builtin_classify_type(expression), IS_UNSIGNED(expression), sizeof(expression))
#define PRINT_TYPE(type) PRINT_TYPE_OF(*(type*)0)
#define MEMBER(type, field) (((type*)0)->field)

#define ABI_HEADER(sha256) printf("header sha256 %s\n", sha256);

#define ABI_ERROR(message) printf("error %s\n", message);

#define ABI_STRUCT(kind, name, type) printf(#kind " " #name " size %zu align %zu\n", sizeof(type), _Alignof(type));

static void print_field(const char* structure, const char* field, size_t offset, size_t size, size_t align) {
    printf("field %s.%s offset %zu size %zu align %zu type ", structure, field, offset, size, align);
}
#define ABI_FIELD(name, type, field)                                                                           \
    print_field(#name, #field, offsetof(type, field), sizeof(MEMBER(type, field)),                            \
                _Alignof(__typeof__(MEMBER(type, field))));                                                   \
    PRINT_TYPE_OF(MEMBER(type, field));                                                                        \
    putchar('\n');
#define ABI_ARRAY_FIELD(name, type, field)                                                                     \
    print_field(#name, #field, offsetof(type, field), sizeof(MEMBER(type, field)),                            \
                _Alignof(__typeof__(MEMBER(type, field))));                                                   \
    PRINT_TYPE_OF(MEMBER(type, field)[0]);                                                                     \
    printf("[%zu]\n", sizeof(MEMBER(type, field)) / sizeof(MEMBER(type, field)[0]));

static void int_constant(const char* name, size_t size, long long value) {
    printf("const %s int%zu %lld\n", name, size, value);
}
static void float_constant(const char* name, size_t size, double value) {
    printf("const %s float%zu %.17g\n", name, size, value);
}
static void string_constant(const char* name, size_t size, const char* value) {
    (void)size;
    printf("const %s string %s\n", name, value);
}
/* _Generic picks the printer; only the chosen one is called, with the constant's own value. */
#define ABI_CONSTANT(name)                                                                                     \
    _Generic((name), float: float_constant, double: float_constant, long double: float_constant,             \
             char*: string_constant, const char*: string_constant, default: int_constant)(#name, sizeof(name), \
                                                                                               (name));

/* A signature is printed in pieces: ABI_FUNCTION (or ABI_CALLBACK), one ABI_PARAMETER per
 * parameter, ABI_END. `matches` says whether the types read from the header are the declaration's. */
static const char* signature_name;
static int signature_matches;
static void begin_signature(const char* kind, const char* name, int count, int matches) {
    signature_name = name;
    signature_matches = matches;
    printf("%s %s args %d returns ", kind, name, count);
}
#define ABI_FUNCTION(name, count, return_type, parameters)                                                     \
    begin_signature("function", #name, count,                                                                  \
                    __builtin_types_compatible_p(__typeof__(&name), return_type(*) parameters));              \
    PRINT_TYPE(return_type);                                                                                   \
    fputs(" params", stdout);
#define ABI_VOID_FUNCTION(name, count, parameters)                                                             \
    begin_signature("function", #name, count, __builtin_types_compatible_p(__typeof__(&name), void(*) parameters)); \
    fputs("void params", stdout);
#define ABI_CALLBACK(name, count, return_type, parameters)                                                     \
    begin_signature("callback", #name, count, __builtin_types_compatible_p(name, return_type(*) parameters));  \
    PRINT_TYPE(return_type);                                                                                   \
    fputs(" params", stdout);
#define ABI_VOID_CALLBACK(name, count, parameters)                                                             \
    begin_signature("callback", #name, count, __builtin_types_compatible_p(name, void(*) parameters));        \
    fputs("void params", stdout);
#define ABI_PARAMETER(type) \
    putchar(' ');           \
    PRINT_TYPE(type);
#define ABI_END()                                                                                              \
    putchar('\n');                                                                                             \
    if (!signature_matches) {                                                                                  \
        printf("error %s: the types native/tests/abi_layout.cmake read are not its declaration's\n",          \
               signature_name);                                                                                \
    }

#define ABI_TYPEDEF(name)               \
    printf("typedef " #name " type "); \
    PRINT_TYPE(name);                   \
    putchar('\n');

int main(void) {
#include "abi_layout_decls.h"
    return ferror(stdout) ? 1 : 0;
}
