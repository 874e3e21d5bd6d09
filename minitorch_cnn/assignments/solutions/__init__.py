"""Reference solutions of the variant tasks -- the instructor's side only.

``assignment make`` never copies this folder into a student copy: the student
gets ``minitorch_cnn/exercises/<name>.py`` with the task regions blanked.
The answers are not in the library either, so a copy of the library's source
does not solve them. Keep this folder out of anything handed to students.
"""
