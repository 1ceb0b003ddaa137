// Unit tests of the Jinja subset (src/tokenizer/jinja_*): syntax, whitespace control as
// transformers configures Jinja2, filters, tests, methods, scoping and error messages.
// Expected strings are what Jinja2 3.x (trim_blocks, lstrip_blocks) renders.
#include <gtest/gtest.h>

#include "core/error.h"
#include "support/expect_error.h"
#include "tokenizer/jinja_template.h"

namespace awq::jinja {
namespace {

std::string render(const std::string& src, const Dict& vars = {}) { return Template(src).render(vars); }

Dict vars_with_messages() {
  Dict d;
  d.set("messages", Value(List{make_dict({{"role", "system"}, {"content", "  sys  "}}),
                               make_dict({{"role", "user"}, {"content", "Hi"}}),
                               make_dict({{"role", "assistant"}, {"content", "Hello!"}})}));
  d.set("bos_token", Value("<s>"));
  return d;
}

TEST(Jinja, TextAndOutput) {
  EXPECT_EQ(render("plain"), "plain");
  EXPECT_EQ(render("{{ 'a' + 'b' }}{{ 1 + 2 }}{{ 7 // 2 }}{{ 7 / 2 }}{{ -7 % 3 }}{{ 2 ** 10 }}"), "ab333.521024");
  EXPECT_EQ(render("{{ 'x' ~ 1 ~ none ~ true }}"), "x1NoneTrue");
  // Precedence and associativity as jinja2's parser: every binary level left-associative (** too,
  // unlike Python), ** over * over ~ over + (1 + 2 ~ 3 is 1 + '23': an error, as in jinja2),
  // comparisons over not over and over or.
  EXPECT_EQ(render("{{ 2 ** 3 ** 2 }}|{{ 10 - 3 - 2 }}|{{ 2 + 3 * 4 }}|{{ 'a' ~ 2 * 3 }}|{{ 24 // 4 // 3 }}|"
                   "{{ 2 * 3 ** 2 }}"),
            "64|5|14|a6|2|18");
  EXPECT_THROW(render("{{ 1 + 2 ~ 3 }}"), std::exception);
  EXPECT_EQ(render("{{ not 1 == 2 and 3 > 2 or false }}|{{ false or not true and true }}"), "True|False");
  EXPECT_EQ(render("{{ undefined_thing }}|{{ none }}|{{ 1.0 }}|{{ 0.1 + 0.2 }}"), "|None|1.0|0.30000000000000004");
  EXPECT_EQ(render("{{ [1, 'a', none] }}{{ {'k': 'v'} }}"), "[1, 'a', None]{'k': 'v'}");
  EXPECT_EQ(render("{{ 'a\\nb\\t\\u00e9' }}"), "a\nb\t\xc3\xa9");
}

TEST(Jinja, TrailingNewlineDroppedOnce) {
  EXPECT_EQ(render("a\n"), "a");
  EXPECT_EQ(render("a\n\n"), "a\n");
  EXPECT_EQ(render("a\r\nb"), "a\nb");
}

TEST(Jinja, WhitespaceControl) {
  // trim_blocks removes the newline after a block tag; lstrip_blocks the indentation before.
  EXPECT_EQ(render("{% if true %}\n  x\n{% endif %}\ny"), "  x\ny");
  EXPECT_EQ(render("  {% if true %}a{% endif %}"), "a");
  // Not for variable tags.
  EXPECT_EQ(render("  {{ 'a' }}\nb"), "  a\nb");
  // '-' strips all whitespace, newlines included.
  EXPECT_EQ(render("a  \n  {{- 'b' -}}  \n  c"), "abc");
  EXPECT_EQ(render("a\n{%- if true -%}\n  b\n{%- endif %}"), "ab");
  // '+' disables lstrip / trim.
  EXPECT_EQ(render("  {%+ if true +%}\nx{% endif %}"), "  \nx");
  // Comments behave like block tags.
  EXPECT_EQ(render("a\n  {# c #}\nb"), "a\nb");
  // lstrip only when the tag is the first thing on its line.
  EXPECT_EQ(render("x {% if true %}y{% endif %}"), "x y");
}

TEST(Jinja, IfElifElse) {
  const char* t = "{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %}";
  for (auto [n, want] : {std::pair{1, "one"}, {2, "two"}, {5, "many"}}) {
    Dict d;
    d.set("n", Value(n));
    EXPECT_EQ(render(t, d), want);
  }
}

TEST(Jinja, ForLoopVariables) {
  EXPECT_EQ(render("{% for x in ['a','b','c'] %}{{ loop.index0 }}{{ loop.index }}{{ x }}"
                   "{% if loop.first %}F{% endif %}{% if loop.last %}L{{ loop.length }}{% endif %},{% endfor %}"),
            "01aF,12b,23cL3,");
  EXPECT_EQ(render("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for x in [1,2,3,4] if x is even %}{{ x }}{{ loop.length }}{% endfor %}"), "2242");
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"), "a=1;b=2;");
  EXPECT_EQ(render("{% for x in [1,2,3,4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}"), "13");
  EXPECT_EQ(render("{% for x in 'hé' %}[{{ x }}]{% endfor %}"), "[h][é]");
  EXPECT_EQ(render("{% for x in [1,2,3] %}{{ loop.cycle('a','b') }}{{ loop.revindex }}{% endfor %}"), "a3b2a1");
}

TEST(Jinja, SetScopingAndNamespace) {
  // A set inside a loop does not leak out; a namespace carries values out.
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1,2] %}{% set x = i * 10 %}{{ x }}{% endfor %}{{ x }}"), "10201");
  EXPECT_EQ(render("{% set ns = namespace(found=false, n=0) %}{% for i in [1,2,3] %}{% set ns.n = ns.n + i %}"
                   "{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }}{{ ns.n }}"),
            "True6");
  EXPECT_EQ(render("{% set a, b = [1, 2] %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(render("{% set t %}in{{ 'side' }}{% endset %}[{{ t }}]"), "[inside]");
  EXPECT_AWQ_ERROR(render("{% set x = 1 %}{% set x.y = 2 %}"), {"line 1: cannot assign attribute 'y' on 'x'"});
}

TEST(Jinja, IndexingAndSlicing) {
  const Dict d = vars_with_messages();
  EXPECT_EQ(render("{{ messages[0].role }}{{ messages[0]['content'] }}{{ messages[-1].content }}", d), "system  sys  Hello!");
  EXPECT_EQ(render("{% for m in messages[1:] %}{{ m.role }},{% endfor %}", d), "user,assistant,");
  EXPECT_EQ(render("{% for m in messages[::-1] %}{{ m.role[0] }}{% endfor %}", d), "aus");
  EXPECT_EQ(render("{{ 'héllo'[1:3] }}{{ 'abc'[::-1] }}{{ [1,2,3,4,5][-2:] }}{{ [1,2,3][5:] }}"), "élcba[4, 5][]");
  EXPECT_EQ(render("{{ messages[9] is defined }}{{ messages[0].nothing is defined }}", d), "FalseFalse");
}

TEST(Jinja, TestsAndLogic) {
  const Dict d = vars_with_messages();
  EXPECT_EQ(render("{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 'a' is string }}{{ 1 is string }}"), "FalseTrueTrueTrueFalse");
  EXPECT_EQ(render("{{ 1 is number }}{{ 1 is integer }}{{ 1.5 is float }}{{ {} is mapping }}{{ 3 is odd }}{{ 9 is divisibleby 3 }}"),
            "TrueTrueTrueTrueTrueTrue");
  EXPECT_EQ(render("{{ 'a' in 'cat' }}{{ 'z' not in ['a'] }}{{ 'role' in messages[0] }}{{ not x is defined }}", d), "TrueTrueTrueTrue");
  EXPECT_EQ(render("{{ '' or 'dflt' }}|{{ 'a' and 'b' }}|{{ 0 and 1 }}|{{ 'y' if 1 > 2 else 'n' }}|{{ 'y' if false }}|"), "dflt|b|0|n||");
  EXPECT_EQ(render("{{ x is not none }}{{ 1 < 2 <= 2 }}"), "TrueTrue");
}

TEST(Jinja, Filters) {
  EXPECT_EQ(render("[{{ '  a b \n' | trim }}][{{ 'xxaxx' | trim('x') }}]"), "[a b][a]");
  EXPECT_EQ(render("{{ [1,2,3] | length }}{{ 'héllo' | length }}{{ {'a':1} | count }}"), "351");
  EXPECT_EQ(render("{{ x | default('d') }}{{ '' | default('e', true) }}{{ '' | default('f') }}"), "de");
  EXPECT_EQ(render("{{ [3,1,2] | first }}{{ [3,1,2] | last }}{{ [1,2] | join(', ') }}{{ 'ab' | upper }}{{ 'AB' | lower }}"), "321, 2ABab");
  EXPECT_EQ(render("{{ 'a-b-c' | replace('-', '+') }}{{ '42' | int + 1 }}{{ 'x' | int }}{{ 3.9 | int }}{{ 'ab' | list }}"), "a+b+c4303['a', 'b']");
  EXPECT_EQ(render("{% for k, v in {'a': 1} | items %}{{ k }}{{ v }}{% endfor %}{{ 1 | string ~ 2 }}"), "a112");
  EXPECT_EQ(render("{{ 'hello world' | title }}{{ 'hELLO' | capitalize }}{{ [1,2,1] | unique | list }}{{ [3,1,2] | sort }}"),
            "Hello WorldHello[1, 2][1, 2, 3]");
  EXPECT_EQ(render("{{ [{'a': 1}, {'a': 2}] | map(attribute='a') | join }}{{ [{'t': 'x'}, {'t': 'y'}] | selectattr('t', 'equalto', 'y') | list | length }}"),
            "121");
  EXPECT_EQ(render("{{ 'a\nb\n\nc' | indent(2) }}"), "a\n  b\n\n  c");
}

TEST(Jinja, ToJsonLikeTransformers) {
  // json.dumps(ensure_ascii=False): ", " / ": " separators, insertion order, unicode kept.
  EXPECT_EQ(render("{{ {'name': 'f', 'args': [1, 2.5, true, none], 'd': 'é\"\\n'} | tojson }}"),
            "{\"name\": \"f\", \"args\": [1, 2.5, true, null], \"d\": \"é\\\"\\n\"}");
  EXPECT_EQ(render("{{ {'a': [1], 'b': {}} | tojson(indent=2) }}"), "{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}"), "{\"a\": 2, \"b\": 1}");
}

TEST(Jinja, StringMethods) {
  EXPECT_EQ(render("[{{ '  x  '.strip() }}][{{ '  x '.lstrip() }}][{{ ' x  '.rstrip() }}][{{ 'xxyxx'.strip('x') }}]"), "[x][x ][ x][y]");
  EXPECT_EQ(render("{{ 'a b  c'.split() }}{{ 'a,b,,c'.split(',') }}{{ 'a,b,c'.split(',', 1) }}{{ 'a,b,c'.rsplit(',', 1) }}"),
            "['a', 'b', 'c']['a', 'b', '', 'c']['a', 'b,c']['a,b', 'c']");
  EXPECT_EQ(render("{{ 'hello'.startswith('he') }}{{ 'hello'.endswith(('x', 'lo')) }}{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}"), "TrueTrueABab");
  EXPECT_EQ(render("{{ 'a</think>b'.split('</think>')[-1] }}{{ 'x'.replace('x', 'yy') }}{{ '-'.join(['a', 'b']) }}"), "byya-b");
  // Python's strip() removes Unicode whitespace too (NBSP, ideographic space).
  EXPECT_EQ(render("[{{ '\\u00a0\\u3000x\\u00a0'.strip() }}]"), "[x]");
}

TEST(Jinja, NonStringDictKeysAndDictsort) {
  // Seed-OSS's template keys a dict by ints and walks it with dictsort.
  EXPECT_EQ(render("{% set d = {512: 'a', 0: 'b'} %}{{ d[512] }}{{ d }}{% for k, v in d | dictsort %}{{ k + 1 }}{{ v }}{% endfor %}"),
            "a{512: 'a', 0: 'b'}1b513a");
  EXPECT_EQ(render("{{ {1: true} | tojson }}{{ 1 in {1: 2} }}{{ {'B': 1, 'a': 2} | dictsort }}"), "{\"1\": true}True[('a', 2), ('B', 1)]");
}

TEST(Jinja, SelectAndMapOnNoneGiveNothing) {
  // Jinja2 only iterates a truthy value here (functionary's template relies on it).
  EXPECT_EQ(render("{{ none | selectattr('type', 'equalto', 'x') | list | length }}{{ none | map(attribute='a') | list }}"), "0[]");
}

TEST(Jinja, DictMethods) {
  EXPECT_EQ(render("{% set d = {'a': 1, 'b': 2} %}{{ d.get('a') }}{{ d.get('z') }}{{ d.get('z', 9) }}{{ d.keys() | list }}{{ d.values() | list }}"),
            "1None9['a', 'b'][1, 2]");
}

TEST(Jinja, Macros) {
  EXPECT_EQ(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', punct='?') }}"),
            "Hi A! Hi B?");
  // Macros see the template's top-level variables.
  Dict d;
  d.set("who", Value("W"));
  EXPECT_EQ(render("{% macro m() %}{{ who }}{% endmacro %}{{ m() }}", d), "W");
}

TEST(Jinja, RaiseException) {
  try {
    render("{% if true %}{{ raise_exception('Roles must alternate') }}{% endif %}");
    FAIL() << "no exception";
  } catch (const TemplateException& e) {
    EXPECT_STREQ(e.what(), "Roles must alternate");
  }
}

TEST(Jinja, StrftimeNowUsesTheGivenClock) {
  Template t("{{ strftime_now('%d %b %Y') }}");
  t.set_now([] {
    std::tm tm{};
    tm.tm_year = 2024 - 1900;
    tm.tm_mon = 6;
    tm.tm_mday = 26;
    return tm;
  });
  EXPECT_EQ(t.render({}), "26 Jul 2024");
}

TEST(Jinja, GenerationBlockRendersItsBody) {
  EXPECT_EQ(render("{% generation %}abc{% endgeneration %}"), "abc");
}

TEST(JinjaErrors, UnsupportedTagNamesLineAndTag) {
  EXPECT_AWQ_ERROR(render("a\n{% include 'x.j2' %}"), {"line 2: unsupported tag 'include'"});
  EXPECT_AWQ_ERROR(render("{% filter upper %}x{% endfilter %}"), {"unsupported tag 'filter'"});
}

TEST(JinjaErrors, UnclosedBlocks) {
  EXPECT_AWQ_ERROR(render("{% if x %}\nabc"), {"unclosed '{% if %}' block opened on line 1: missing '{% endif %}'"});
  EXPECT_AWQ_ERROR(render("{% for x in y %}"), {"missing '{% endfor %}'"});
  EXPECT_AWQ_ERROR(render("ab {{ x "), {"line 1: unclosed tag '{{'"});
  EXPECT_AWQ_ERROR(render("{# never closed"), {"unclosed comment"});
  EXPECT_AWQ_ERROR(render("{% endif %}"), {"unexpected '{% endif %}'"});
}

TEST(JinjaErrors, SyntaxAndRuntime) {
  EXPECT_AWQ_ERROR(render("{{ 'abc }}"), {"unterminated string literal"});
  EXPECT_AWQ_ERROR(render("{{ x | frobnicate }}"), {"line 1: unknown filter 'frobnicate'"});
  EXPECT_AWQ_ERROR(render("\n{{ x is frobbed }}"), {"line 2: unknown test 'frobbed'"});
  EXPECT_AWQ_ERROR(render("{{ 'a' + 1 }}"), {"unsupported operand types for +: 'str' and 'int'"});
  EXPECT_AWQ_ERROR(render("{{ x.y }}"), {"'x' is undefined"});
  EXPECT_AWQ_ERROR(render("{{ 'a'.nomethod() }}"), {"'str' object has no method 'nomethod'"});
  EXPECT_AWQ_ERROR(render("{% if (1 %}{% endif %}"), {"expected ')'"});
}

TEST(JinjaErrors, MalformedTemplatesThrowAndNeverCrash) {
  // Each is a syntax error: awq::Error with a line number, never a crash or a hang.
  for (const char* src : {"{{", "{%", "{% if %}", "{{ a[ }}", "{{ a. }}", "{% for %}", "{% for x in %}{% endfor %}",
                          "{% set %}", "{{ 'a' | }}", "{% macro m( %}{% endmacro %}", "{{ {1: } }}", "{{ 1 + }}",
                          "}}{{", "{% elif x %}", "{% if x %}{% else %}{% else %}{% endif %}", "{{ x is }}",
                          "{% set ns.a %}", "{{ a(b=) }}", "{{ [1, 2 }}", "{{ (1, 2 }}", "{{ 1 if }}", "{% break x %}",
                          "{{ x | default( }}", "{%- -%}", "{{ 'a' 'b' }}x{{ }}", "{{ 99999999999999999999 }}"}) {
    const std::string msg = test::error_message([&] { Template t(src); });
    EXPECT_EQ(msg.rfind("line ", 0), 0u) << src << " -> " << msg;
  }
}

}  // namespace
}  // namespace awq::jinja
