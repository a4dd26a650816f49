import { join } from 'node:path';
import { createOnnxTextEmbedder } from '../src/index.js';
import { writeBertEncoderModel } from '../src/test-support/index.js';
import { createTemporaryFolder, expectVectorClose } from './temporary-folder.js';

describe('writeBertEncoderModel (small shape)', () => {
  it('loads, embeds, and gives a padded sequence the same vector under real attention', async () => {
    const folder = await createTemporaryFolder('bert');
    try {
      const fixture = await writeBertEncoderModel(join(folder.path, 'bert'), {
        layers: 2,
        hiddenSize: 32,
        heads: 4,
        intermediateSize: 64,
        vocabularySize: 600,
        maxLength: 64,
      });
      const embedder = await createOnnxTextEmbedder(fixture.folder, { threads: 1 });
      expect([embedder.dimensions, embedder.maxTokens, embedder.pooling]).toEqual([32, 64, 'mean']);
      const short = fixture.words.slice(0, 3).join(' ');
      const long = fixture.words.slice(10, 40).join(' ');
      const alone = await embedder.embed([short]);
      const padded = await embedder.embed([long, short]);
      expect(alone.tokenCounts).toEqual([5]);
      expectVectorClose(padded.vectors[1] as Float32Array, Array.from(alone.vectors[0] as Float32Array), 5);
      await embedder.dispose();
    } finally {
      await folder.remove();
    }
  });
});
