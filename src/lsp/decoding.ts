/**
 * dist/lsp-decode.js: what the language server needs only once a log's references are asked
 * about (links, hovers, Decode report): the decoder with the symbol readers, and Capstone.
 * Diagnostics need none of it, so the server starts without loading it (bench L1).
 */
export { Decoder } from '../engine/decode/resolve';
export { decodeLog } from '../engine/decode/stacktrace';
export { codeMarkdown, disassembleCode } from './code';
