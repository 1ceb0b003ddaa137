# cmake -DINPUT=file -DOUTPUT=out.cpp -P embed_file.cmake
# Writes out.cpp defining awq::server::web_page() that returns INPUT's bytes (hex-escaped, so
# any byte survives and no raw-string delimiter can clash with the page's text).
file(READ ${INPUT} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){24})" "\\1\n" body "${body}")
file(WRITE ${OUTPUT} "// Generated from ${INPUT} by cmake/embed_file.cmake; do not edit.\n#include <string_view>\n\nnamespace awq::server {\nnamespace {\nconst unsigned char kPage[${bytes} + 1] = {\n${body}0};\n}  // namespace\nstd::string_view web_page() { return {reinterpret_cast<const char*>(kPage), ${bytes}}; }\n}  // namespace awq::server\n")
