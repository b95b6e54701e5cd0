/**
 * jupyterlab-kestrel: the Kestrel language in JupyterLab.
 *
 * Registers `kestrel` (mime text/x-kestrel, files *.hf) with the CodeMirror 6 language
 * registry, so notebook cells of the Kestrel kernel (language_info.name / codemirror_mode
 * "kestrel") and .hf files in the editor are highlighted, and the `.hf` file type with the
 * document registry, so huntflows open as text with that mime type.
 */

import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import {
  HighlightStyle,
  LanguageSupport,
  StreamLanguage,
  syntaxHighlighting
} from '@codemirror/language';
import { tags } from '@lezer/highlight';

import { kestrel } from './kestrel';

export const MIME_TYPE = 'text/x-kestrel';

/**
 * Colours, from JupyterLab's theme variables, for the two tags its own highlight style
 * leaves plain: entity types and data source URIs/paths. (Units, null and operator words
 * are keyword subtags: JupyterLab colours them as keywords.)
 */
const kestrelStyle = HighlightStyle.define([
  { tag: tags.typeName, color: 'var(--jp-mirror-editor-def-color)' },
  { tag: tags.url, color: 'var(--jp-mirror-editor-string-color)' }
]);

/** The Kestrel language support: the stream parser and the extra colours. */
export function kestrelSupport(): LanguageSupport {
  const language = StreamLanguage.define(kestrel);
  return new LanguageSupport(language, [syntaxHighlighting(kestrelStyle)]);
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-kestrel:plugin',
  description: 'Kestrel syntax highlighting for huntbooks and .hf huntflows',
  autoStart: true,
  requires: [IEditorLanguageRegistry],
  activate: (app: JupyterFrontEnd, languages: IEditorLanguageRegistry) => {
    languages.addLanguage({
      name: 'kestrel',
      displayName: 'Kestrel',
      alias: ['hf', 'huntflow'],
      mime: MIME_TYPE,
      extensions: ['hf'],
      load: async () => kestrelSupport()
    });
    app.docRegistry.addFileType({
      name: 'kestrel',
      displayName: 'Kestrel huntflow',
      extensions: ['.hf'],
      mimeTypes: [MIME_TYPE],
      fileFormat: 'text',
      contentType: 'file'
    });
  }
};

export default plugin;
